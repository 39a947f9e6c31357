"""Targets: a family of forward-return constructions, each residualised per era its own way.

Every target is the forward return after a lag over a horizon, made cross-sectionally
neutral to some of the stocks' exposures (sector, market beta, momentum, volatility) or
scaled by their risk. Which construction stands behind a published target name is the
operator's secret (`target_names`): the names say nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.data.keys import OperatorKeys

# What each construction is neutral to, in the order the design matrix stacks them.
CONSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "raw": (),
    "market_neutral": ("intercept", "beta"),
    "sector_neutral": ("sectors",),
    "beta_sector_residual": ("sectors", "beta"),
    "factor_neutral": ("sectors", "beta", "momentum", "volatility"),
    "volatility_scaled": ("sectors", "beta"),  # then divided by the stock's volatility
}
DEFAULT_MAIN_CONSTRUCTION = "beta_sector_residual"
# Published names, Numerai style: one per construction, meaningless to outsiders.
TARGET_NAMES = ("ender", "victor", "xerxes", "teager2b", "cyrusd", "ralph")
MOMENTUM_WINDOW, MOMENTUM_SKIP, VOLATILITY_WINDOW = 252, 21, 63
CHUNK_ERAS = 256  # eras whose design matrices are held in memory at once


def target_column(name: str, horizon: int) -> str:
    """`target_<name>_<horizon>`, as Numerai names its targets."""
    return f"target_{name}_{horizon}"


def target_names(keys: OperatorKeys, main_name: str, main_construction: str) -> dict[str, str]:
    """Published name → construction: the main name gets the operator's main construction,
    the other names the other constructions in a keyed order."""
    others = [c for c in CONSTRUCTIONS if c != main_construction]
    shuffled = [others[i] for i in keys.rng("target-names").permutation(len(others))]
    names = [n for n in TARGET_NAMES if n != main_name]
    return {main_name: main_construction, **dict(zip(names, shuffled, strict=True))}


@dataclass(frozen=True)
class Exposures:
    """What targets are neutralised against, per era and ticker (operator only)."""

    beta: np.ndarray  # (eras, tickers); NaN without a full beta window
    sectors: np.ndarray  # (tickers,) integer codes
    momentum: np.ndarray  # (eras, tickers); log return from a year back to a month back
    volatility: np.ndarray  # (eras, tickers); std of daily log returns over three months


def trailing_exposures(
    close: np.ndarray, days: np.ndarray, beta: np.ndarray, sectors: np.ndarray
) -> Exposures:
    """Momentum and volatility at each era day from the prices up to it (NaN where a
    window is incomplete), with the given betas and sectors."""
    n_days = close.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        log_close = np.log(close)
        start, end = days - MOMENTUM_WINDOW, days - MOMENTUM_SKIP
        momentum = np.full((len(days), close.shape[1]), np.nan)
        ok = start >= 0
        momentum[ok] = log_close[end[ok]] - log_close[start[ok]]
        daily = np.diff(log_close, axis=0)
        valid = np.isfinite(daily)
        filled = np.where(valid, daily, 0.0)
        zero = np.zeros((1, close.shape[1]))
        s1 = np.concatenate([zero, np.cumsum(filled, axis=0)])
        s2 = np.concatenate([zero, np.cumsum(filled**2, axis=0)])
        count = np.concatenate([zero, np.cumsum(valid, axis=0)])
        hi = np.clip(days, 0, n_days - 1)  # returns 1..d end at prefix index d
        lo = hi - VOLATILITY_WINDOW
        volatility = np.full(momentum.shape, np.nan)
        ok = lo >= 0
        n = count[hi[ok]] - count[lo[ok]]
        mean = (s1[hi[ok]] - s1[lo[ok]]) / n
        var = (s2[hi[ok]] - s2[lo[ok]]) / n - mean**2
        volatility[ok] = np.where(
            n == VOLATILITY_WINDOW, np.sqrt(np.maximum(var, 0.0) * n / (n - 1)), np.nan
        )
    return Exposures(beta, sectors, momentum, volatility)


def forward_returns(close: np.ndarray, days: np.ndarray, lag: int, horizon: int) -> np.ndarray:
    """log(close[d + lag + horizon] / close[d + lag]) per era day d and ticker.

    NaN where the window runs past the end of the panel or a price is missing.
    """
    start, end = days + lag, days + lag + horizon
    out = np.full((len(days), close.shape[1]), np.nan)
    known = end < close.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[known] = np.log(close[end[known]] / close[start[known]])
    return out


def neutralise(returns: np.ndarray, design: np.ndarray, include: np.ndarray) -> np.ndarray:
    """Per era, the residual of a least-squares fit of `returns` (eras, tickers) on
    `design` (eras, tickers, k), over the included cells where everything is finite.

    All eras are solved at once through their normal equations (a pseudo-inverse, so a
    column with no rows in an era does no harm); cells left out stay NaN.
    """
    rows = include & np.isfinite(returns) & np.isfinite(design).all(axis=-1)
    if design.shape[-1] == 0:
        return np.where(rows, returns, np.nan)
    x = np.where(rows[..., None], design, 0.0)
    y = np.where(rows, returns, 0.0)
    gram = np.einsum("etk,etl->ekl", x, x)
    moments = np.einsum("etk,et->ek", x, y)
    coef = np.einsum("ekl,el->ek", np.linalg.pinv(gram, hermitian=True), moments)
    fitted = np.einsum("etk,ek->et", x, coef)
    return np.where(rows, returns - fitted, np.nan)


def _standardised(values: np.ndarray, include: np.ndarray) -> np.ndarray:
    """Per era z-scores over the included cells; missing values sit at the mean (0)."""
    valid = include & np.isfinite(values)
    n = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, values, 0.0).sum(axis=1, keepdims=True) / n
    centred = np.where(valid, values - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / n)
    return np.asarray(centred / np.where(std > 0, std, 1.0))


def _design(kind: str, exposures: Exposures, include: np.ndarray) -> np.ndarray:
    columns: list[np.ndarray] = []
    shape = exposures.beta.shape
    for part in CONSTRUCTIONS[kind]:
        if part == "intercept":
            columns.append(np.ones(shape)[..., None])
        elif part == "sectors":
            dummies = exposures.sectors[:, None] == np.unique(exposures.sectors)[None, :]
            columns.append(np.broadcast_to(dummies.astype(np.float64), (*shape, dummies.shape[1])))
        elif part == "beta":
            columns.append(exposures.beta[..., None])
        else:
            columns.append(_standardised(getattr(exposures, part), include)[..., None])
    if not columns:
        return np.empty((*shape, 0))
    return np.concatenate(columns, axis=-1)


def construct(
    kind: str, returns: np.ndarray, exposures: Exposures, include: np.ndarray
) -> np.ndarray:
    """One construction's unbinned target values (eras, tickers); NaN outside `include`."""
    if kind not in CONSTRUCTIONS:
        raise ValueError(f"unknown target construction {kind!r}; known: {sorted(CONSTRUCTIONS)}")
    out = np.full(returns.shape, np.nan)
    for start in range(0, returns.shape[0], CHUNK_ERAS):
        part = slice(start, start + CHUNK_ERAS)
        chunk = Exposures(
            exposures.beta[part],
            exposures.sectors,
            exposures.momentum[part],
            exposures.volatility[part],
        )
        design = _design(kind, chunk, include[part])
        out[part] = neutralise(returns[part], design, include[part])
    if kind == "volatility_scaled":
        volatility = exposures.volatility
        typical = np.nanmedian(np.where(include & (volatility > 0), volatility, np.nan), axis=1)
        volatility = np.where(volatility > 0, volatility, np.nan_to_num(typical)[:, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(volatility > 0, out / volatility, np.nan)
    return out


def residualise(
    returns: np.ndarray, beta: np.ndarray, sectors: np.ndarray, include: np.ndarray
) -> np.ndarray:
    """Per era, the part of each return not explained by sector and market beta.

    Each era is a cross-sectional least-squares fit of returns on sector dummies (which
    absorb the intercept) and beta; cells outside `include` or without data stay NaN.
    """
    none = np.full(beta.shape, np.nan)
    return construct("beta_sector_residual", returns, Exposures(beta, sectors, none, none), include)
