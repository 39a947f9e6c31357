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

# What each construction is neutral to: the groups it is demeaned within (every stock one
# group: the market; or its sector), then the exposures it is regressed on.
CONSTRUCTIONS: dict[str, tuple[str | None, tuple[str, ...]]] = {
    "raw": (None, ()),
    "market_neutral": ("market", ("beta",)),
    "sector_neutral": ("sectors", ()),
    "beta_sector_residual": ("sectors", ("beta",)),
    "factor_neutral": ("sectors", ("beta", "momentum", "volatility")),
    "volatility_scaled": ("sectors", ("beta",)),  # then divided by the stock's volatility
}
DEFAULT_MAIN_CONSTRUCTION = "beta_sector_residual"
# Published names, Numerai style: one per construction, meaningless to outsiders.
TARGET_NAMES = ("ender", "victor", "xerxes", "teager2b", "cyrusd", "ralph")
MOMENTUM_WINDOW, MOMENTUM_SKIP, VOLATILITY_WINDOW = 252, 21, 63


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


def neutralise(
    returns: np.ndarray,
    design: np.ndarray,
    include: np.ndarray,
    groups: np.ndarray | None = None,
) -> np.ndarray:
    """Per era, the residual of a least-squares fit of `returns` (eras, tickers) on group
    dummies (`groups`: an integer code per ticker, or None) and `design` (eras, tickers, k),
    over the included cells where everything is finite; other cells stay NaN.

    The dummies are removed by demeaning within each (era, group) (Frisch–Waugh), the
    remaining k columns through each era's normal equations (a pseudo-inverse, so a column
    with no spread in an era does no harm), all eras at once.
    """
    rows = include & np.isfinite(returns) & np.isfinite(design).all(axis=-1)
    y = np.where(rows, returns, 0.0)
    x = np.where(rows[..., None], design, 0.0)
    if groups is not None:
        y, x = _group_demeaned(y, rows, groups), _group_demeaned(x, rows, groups)
    if design.shape[-1]:
        xt = np.swapaxes(x, 1, 2)
        coef = np.linalg.pinv(xt @ x, hermitian=True) @ (xt @ y[..., None])
        y = y - (x @ coef)[..., 0]
    return np.where(rows, y, np.nan)


def _group_demeaned(values: np.ndarray, rows: np.ndarray, groups: np.ndarray) -> np.ndarray:
    """`values` (eras, tickers[, k]) less their mean over the rows of each (era, group)."""
    n_groups = int(groups.max()) + 1 if groups.size else 1
    cell = (np.arange(rows.shape[0])[:, None] * n_groups + groups[None, :]).ravel()
    counts = np.bincount(cell, weights=rows.ravel(), minlength=rows.shape[0] * n_groups)
    flat = values.reshape(cell.size, -1)
    out = np.empty_like(flat)
    for j in range(flat.shape[1]):
        sums = np.bincount(cell, weights=flat[:, j], minlength=counts.size)
        out[:, j] = flat[:, j] - (sums / np.maximum(counts, 1))[cell]
    return np.where(rows.reshape(-1, 1), out, 0.0).reshape(values.shape)


def _standardised(values: np.ndarray, include: np.ndarray) -> np.ndarray:
    """Per era z-scores over the included cells; missing values sit at the mean (0)."""
    valid = include & np.isfinite(values)
    n = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    mean = np.where(valid, values, 0.0).sum(axis=1, keepdims=True) / n
    centred = np.where(valid, values - mean, 0.0)
    std = np.sqrt((centred**2).sum(axis=1, keepdims=True) / n)
    return np.asarray(centred / np.where(std > 0, std, 1.0))


def _design(kind: str, exposures: Exposures, include: np.ndarray) -> np.ndarray:
    """The exposures a construction regresses on, (eras, tickers, k): beta as it is, the
    others standardised per era (a missing value at the mean)."""
    columns = [
        exposures.beta if name == "beta" else _standardised(getattr(exposures, name), include)
        for name in CONSTRUCTIONS[kind][1]
    ]
    if not columns:
        return np.empty((*exposures.beta.shape, 0))
    return np.stack(columns, axis=-1)


def _groups(kind: str, exposures: Exposures) -> np.ndarray | None:
    grouping = CONSTRUCTIONS[kind][0]
    if grouping is None:
        return None
    if grouping == "market":
        return np.zeros(len(exposures.sectors), dtype=np.int64)
    codes: np.ndarray = np.unique(exposures.sectors, return_inverse=True)[1]
    return codes


def construct(
    kind: str, returns: np.ndarray, exposures: Exposures, include: np.ndarray
) -> np.ndarray:
    """One construction's unbinned target values (eras, tickers); NaN outside `include`."""
    if kind not in CONSTRUCTIONS:
        raise ValueError(f"unknown target construction {kind!r}; known: {sorted(CONSTRUCTIONS)}")
    out = neutralise(returns, _design(kind, exposures, include), include, _groups(kind, exposures))
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
