"""Point-in-time features for (era day, stock), computed from a daily `Panel`.

A feature at row d reads only rows d - (MIN_HISTORY - 1) .. d. Rolling statistics come
from prefix sums over the daily arrays (one prefix per statistic, shared by all its
horizons) and are materialised only at the requested days. A window with any missing
price gives NaN (and, for market features, any missing market level too); so does a
window reaching before the first row.

Feature names are descriptive and operator-only: they are never published.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from crowdquant.data.panel import Panel

F64 = npt.NDArray[np.float64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
Mask = npt.NDArray[np.bool_]
Features = Iterator[tuple[str, F64]]
Getter = Callable[[str], F64]
Key = tuple[int, int]  # (window length in rows, lag in rows before the era day)

GROUPS = (
    "momentum",
    "reversal",
    "volatility",
    "trend",
    "drawdown",
    "market",
    "distribution",
    "sector_relative",
    "volume",
)

# Windows count daily returns (w returns ⇒ w + 1 prices) unless noted otherwise.
_MOM_HORIZONS = (42, 63, 126, 189, 252)
_MOM_SKIPS = (0, 5, 21)
_MOM_EXTRA = ((252, 126), (252, 63), (126, 63))
_MOM_SHARPE = ((63, 0), (126, 21), (252, 21))
_RETURN_W = (1, 2, 3, 5, 10, 21)
_VOLSCALED = ((1, 21), (5, 21), (21, 63))
_RESID_RETURN_W = (5, 21)
_VOL_W = (5, 10, 21, 42, 63, 126, 252)
_DOWNSIDE_W = (21, 63, 126, 252)
_ABS_W = (21, 63)
_VOL_RATIOS = ((5, 63), (21, 63), (21, 252), (63, 252))
_DOWNSIDE_RATIO_W = (63, 252)
_SMA_W = (5, 10, 21, 50, 100, 200)  # in prices
_SMA_CROSS = ((5, 21), (10, 50), (21, 63), (50, 200), (100, 252))  # in prices
_EMA_SPANS = (12, 26, 50)
_MACD = ((12, 26), (5, 35))
_MACD_SIGNAL = 9
_SLOPE_W = (63, 126, 252)  # in prices
_R2_W = (63, 252)  # in prices; a subset of _SLOPE_W
_DRAWDOWN_W = (21, 63, 126, 252)  # in prices
_RANGE_W = (21, 63, 252)  # in prices
_BETA_W = (63, 126, 252)
_DOWN_BETA_W = (126, 252)
_COSKEW_W = (252,)
_RESID_MOM = ((63, 0), (126, 21), (252, 21))
_RESID_BETA_W = 252  # the beta that residual returns remove
_SKEW_W = (21, 63, 126, 252)
_KURT_W = (63, 126, 252)
_EXTREME_W = (21, 63, 252)
_UP_W = (21, 63, 252)
_AUTOCORR_W = (63, 126, 252)
_SECTOR_BASES = (
    "momentum_252_21",
    "momentum_126_21",
    "momentum_63_0",
    "return_5",
    "return_21",
    "volatility_63",
    "volatility_252",
    "beta_252",
    "idio_volatility_63",
    "drawdown_252",
    "price_sma_50",
    "residual_momentum_252_21",
)
_DOLLAR_VOLUME_W = (21, 63, 252)  # in days
_VOLUME_RATIOS = ((5, 21), (5, 63), (21, 252))  # in days
_AMIHUD_W = (21, 63, 252)
_VOLUME_VOL_W = (21, 63)  # in days
_ABS_RET_VOLUME_CORR_W = (63, 252)
_SECTOR_VOLUME_BASES = ("log_dollar_volume_63",)

MIN_HISTORY = 253  # rows: 252-return windows need 253 prices


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its descriptive name (operator-only; never published) and its group."""

    name: str
    group: str


# --- the feature list --------------------------------------------------------------------


def _ema_window(span: int) -> int:
    """Rows of the truncated EMA of this span (outside weight ≈ e^-8)."""
    return 4 * span


def _price_names() -> list[tuple[str, list[str]]]:
    return [
        (
            "momentum",
            [f"momentum_{h}_{s}" for h in _MOM_HORIZONS for s in _MOM_SKIPS]
            + [f"momentum_{h}_{s}" for h, s in _MOM_EXTRA]
            + ["momentum_accel_63_126"]
            + [f"momentum_sharpe_{h}_{s}" for h, s in _MOM_SHARPE],
        ),
        (
            "reversal",
            [f"return_{w}" for w in _RETURN_W]
            + [f"return_{w}_volscaled_{v}" for w, v in _VOLSCALED]
            + [f"residual_return_{w}" for w in _RESID_RETURN_W],
        ),
        (
            "volatility",
            [f"volatility_{w}" for w in _VOL_W]
            + [f"downside_volatility_{w}" for w in _DOWNSIDE_W]
            + [f"mean_abs_return_{w}" for w in _ABS_W]
            + [f"volatility_ratio_{a}_{b}" for a, b in _VOL_RATIOS]
            + [f"downside_ratio_{w}" for w in _DOWNSIDE_RATIO_W],
        ),
        (
            "trend",
            [f"price_sma_{w}" for w in _SMA_W]
            + [f"sma_cross_{a}_{b}" for a, b in _SMA_CROSS]
            + [f"price_ema_{s}" for s in _EMA_SPANS]
            + [f"macd_{f}_{s}" for f, s in _MACD]
            + ["macd_hist_12_26_9", "macd_volscaled_12_26"]
            + [f"trend_slope_{w}" for w in _SLOPE_W]
            + [f"trend_r2_{w}" for w in _R2_W],
        ),
        (
            "drawdown",
            [f"drawdown_{w}" for w in _DRAWDOWN_W]
            + [f"rebound_{w}" for w in _DRAWDOWN_W]
            + [f"range_position_{w}" for w in _RANGE_W],
        ),
        (
            "market",
            [f"beta_{w}" for w in _BETA_W]
            + [f"market_corr_{w}" for w in _BETA_W]
            + [f"idio_volatility_{w}" for w in _BETA_W]
            + [f"downside_beta_{w}" for w in _DOWN_BETA_W]
            + [f"coskewness_{w}" for w in _COSKEW_W]
            + ["beta_change_63_252"]
            + [f"residual_momentum_{h}_{s}" for h, s in _RESID_MOM]
            + ["residual_momentum_tstat_252_21"],
        ),
        (
            "distribution",
            [f"skewness_{w}" for w in _SKEW_W]
            + [f"kurtosis_{w}" for w in _KURT_W]
            + [f"max_return_{w}" for w in _EXTREME_W]
            + [f"min_return_{w}" for w in _EXTREME_W]
            + [f"up_fraction_{w}" for w in _UP_W]
            + [f"autocorr_{w}" for w in _AUTOCORR_W],
        ),
        ("sector_relative", [f"sector_rel_{b}" for b in _SECTOR_BASES]),
    ]


def _volume_names() -> list[tuple[str, list[str]]]:
    return [
        (
            "volume",
            [f"log_dollar_volume_{w}" for w in _DOLLAR_VOLUME_W]
            + [f"volume_ratio_{a}_{b}" for a, b in _VOLUME_RATIOS]
            + [f"amihud_{w}" for w in _AMIHUD_W]
            + [f"volume_volatility_{w}" for w in _VOLUME_VOL_W]
            + [f"abs_return_volume_corr_{w}" for w in _ABS_RET_VOLUME_CORR_W],
        ),
        ("sector_relative", [f"sector_rel_{b}" for b in _SECTOR_VOLUME_BASES]),
    ]


def feature_specs(has_volume: bool) -> list[FeatureSpec]:
    """Every feature `compute_features` returns, in its column order.

    Price features come first; with volume, the volume features are appended, so price
    columns keep their positions either way.
    """
    groups = _price_names() + (_volume_names() if has_volume else [])
    return [FeatureSpec(name, group) for group, names in groups for name in names]


# --- shared daily arrays and window helpers ----------------------------------------------


@dataclass(frozen=True)
class _Ctx:
    """The daily arrays every stage reads, and the rows to materialise."""

    days: I64  # (D,) requested rows, as positions in the arrays below
    lp: F64  # (T, N) log close, NaN where missing
    r0: F64  # (T, N) daily log return, 0 where it cannot be computed
    nvalid: I32  # (T+1, N) prefix count of computable daily returns
    mlp: F64  # (T,) log market level, NaN where missing
    m0: F64  # (T,) market daily log return, 0 where it cannot be computed
    mvalid: I32  # (T+1,) prefix count of computable market returns
    _masks: dict[tuple[str, int, int], Mask] = field(default_factory=dict, compare=False)

    def full(self, w: int, lag: int = 0) -> Mask:
        """(D, N): the w returns ending `lag` rows before each day are all computable."""
        key = ("stock", w, lag)
        if key not in self._masks:
            self._masks[key] = _full_window(self.nvalid, self.days, w, lag)
        return self._masks[key]

    def market_full(self, w: int, lag: int = 0) -> Mask:
        """(D, 1): the same for the market's returns."""
        key = ("market", w, lag)
        if key not in self._masks:
            self._masks[key] = _full_window(self.mvalid, self.days, w, lag)[:, None]
        return self._masks[key]


def _bounds(days: I64, w: int, lag: int) -> tuple[I64, I64, Mask]:
    """Prefix rows (lo, hi) of the w-row window ending `lag` rows before each day.

    `inside` is False where the window would start before the first row.
    """
    hi = days - lag + 1
    lo = hi - w
    return np.clip(lo, 0, None), np.clip(hi, 0, None), lo >= 0


def _prefix(x: F64) -> F64:
    """Prefix sums over rows with a leading zero row: window sum = p[hi] - p[lo]."""
    out = np.empty((x.shape[0] + 1, *x.shape[1:]), dtype=np.float64)
    out[0] = 0.0
    np.cumsum(x, axis=0, out=out[1:])
    return out


def _count_prefix(valid: Mask) -> I32:
    out = np.zeros((valid.shape[0] + 1, *valid.shape[1:]), dtype=np.int32)
    np.cumsum(valid, axis=0, dtype=np.int32, out=out[1:])
    return out


def _full_window(counts: I32, days: I64, w: int, lag: int) -> Mask:
    lo, hi, inside = _bounds(days, w, lag)
    ok: Mask = (counts[hi] - counts[lo]) == w
    return ok & (inside if ok.ndim == 1 else inside[:, None])


def _window_sum(p: F64, days: I64, w: int, lag: int = 0) -> F64:
    lo, hi, _ = _bounds(days, w, lag)
    return p[hi] - p[lo]


def _sums(ctx: _Ctx, x: F64, keys: Iterable[Key]) -> dict[Key, F64]:
    """Window sums of the daily array x at the requested days, one per (window, lag)."""
    p = _prefix(x)
    return {key: _window_sum(p, ctx.days, *key) for key in set(keys)}


def _at(x: F64, days: I64, lag: int) -> F64:
    """Rows days - lag of x; NaN rows where that falls before the first row."""
    rows = days - lag
    out = x[np.clip(rows, 0, None)]
    out[rows < 0] = np.nan
    return out


def _mask(values: F64, ok: Mask) -> F64:
    return np.where(ok, values, np.nan)


def _log_level(x: F64) -> F64:
    """Log of a positive level; NaN where missing, non-positive or infinite."""
    out = np.log(x)
    out[~np.isfinite(out)] = np.nan
    return out


def _daily_returns(lp: F64) -> tuple[F64, Mask]:
    """Daily log returns (0 where not computable) and where they are computable."""
    r = np.full_like(lp, np.nan)
    np.subtract(lp[1:], lp[:-1], out=r[1:])
    valid = np.isfinite(r)
    np.nan_to_num(r, copy=False, nan=0.0)
    return r, valid


def _rows_read(days: I64) -> slice:
    """The panel rows that features at `days` (non-empty, sorted) can read."""
    return slice(max(int(days[0]) - (MIN_HISTORY - 1), 0), int(days[-1]) + 1)


def _context(panel: Panel, days: I64) -> _Ctx:
    """Daily arrays over the rows `days` can read; ctx.days index into those rows."""
    rows = _rows_read(days)
    lp = _log_level(panel.close.to_numpy(dtype=np.float64)[rows])
    r0, valid = _daily_returns(lp)
    nvalid = _count_prefix(valid)
    del valid
    mlp = _log_level(panel.market.to_numpy(dtype=np.float64)[rows])
    m0, mvalid = _daily_returns(mlp)
    return _Ctx(days - rows.start, lp, r0, nvalid, mlp, m0, _count_prefix(mvalid))


def _return_sum(ctx: _Ctx, w: int, lag: int = 0) -> F64:
    """Sum of the w daily log returns ending `lag` rows before each day (unmasked)."""
    return _at(ctx.lp, ctx.days, lag) - _at(ctx.lp, ctx.days, lag + w)


def _market_sum(ctx: _Ctx, w: int, lag: int = 0) -> F64:
    """(D, 1) sum of the market's w daily log returns ending `lag` rows before each day."""
    return (_at(ctx.mlp, ctx.days, lag) - _at(ctx.mlp, ctx.days, lag + w))[:, None]


def _log_return(ctx: _Ctx, h: int, s: int) -> F64:
    """log(close[d - s] / close[d - h]), NaN unless every price in between is present."""
    return _mask(_return_sum(ctx, h - s, s), ctx.full(h - s, s))


def _rolling_max_at(x: F64, windows: Iterable[int], days: I64) -> dict[int, F64]:
    """Max of x over rows d-w+1..d at each day d, for each window w.

    Sparse-table doubling: after k steps m[t] = max(x[t-2^k+1 .. t]); a window w with
    p <= w < 2p is covered by the two blocks of p rows ending at d and at d-w+p.
    """
    block = {w: 1 << (w.bit_length() - 1) for w in windows}
    m = x.copy()
    out: dict[int, F64] = {}
    p = 1
    while True:
        for w in (w for w, b in block.items() if b == p):
            out[w] = np.maximum(m[days], m[np.clip(days - w + p, 0, None)])
        if p >= max(block.values()):
            return out
        np.maximum(m[p:], m[:-p], out=m[p:])
        p *= 2


# --- price stages --------------------------------------------------------------------------


def _momentum(ctx: _Ctx) -> Features:
    for h in _MOM_HORIZONS:
        for s in _MOM_SKIPS:
            yield f"momentum_{h}_{s}", _log_return(ctx, h, s)
    for h, s in _MOM_EXTRA:
        yield f"momentum_{h}_{s}", _log_return(ctx, h, s)
    for w in _RETURN_W:
        yield f"return_{w}", _log_return(ctx, w, 0)


def _volatility(ctx: _Ctx) -> Features:
    s2 = _sums(ctx, ctx.r0 * ctx.r0, ((w, 0) for w in _VOL_W))
    for w in _VOL_W:
        s1 = _return_sum(ctx, w)
        var = (s2[w, 0] - s1 * s1 / w) / (w - 1)
        yield f"volatility_{w}", _mask(np.sqrt(np.maximum(var, 0.0)), ctx.full(w))
    del s2
    down = np.minimum(ctx.r0, 0.0)
    sd = _sums(ctx, down * down, ((w, 0) for w in _DOWNSIDE_W))
    del down
    for w in _DOWNSIDE_W:
        yield f"downside_volatility_{w}", _mask(np.sqrt(sd[w, 0] / w), ctx.full(w))
    sa = _sums(ctx, np.abs(ctx.r0), ((w, 0) for w in _ABS_W))
    for w in _ABS_W:
        yield f"mean_abs_return_{w}", _mask(sa[w, 0] / w, ctx.full(w))


def _moments(ctx: _Ctx) -> Features:
    """Population skewness and excess kurtosis of daily log returns."""
    windows = sorted(set(_SKEW_W) | set(_KURT_W))
    keys = [(w, 0) for w in windows]
    power = ctx.r0 * ctx.r0
    s2 = _sums(ctx, power, keys)
    s4 = _sums(ctx, power * power, ((w, 0) for w in _KURT_W))
    power *= ctx.r0
    s3 = _sums(ctx, power, keys)
    del power
    for w in windows:
        mu = _return_sum(ctx, w) / w
        e2, e3 = s2[w, 0] / w, s3[w, 0] / w
        m2 = e2 - mu * mu
        ok = ctx.full(w)
        if w in _SKEW_W:
            m3 = e3 - 3 * mu * e2 + 2 * mu**3
            yield f"skewness_{w}", _mask(m3 / m2**1.5, ok)
        if w in _KURT_W:
            m4 = s4[w, 0] / w - 4 * mu * e3 + 6 * mu**2 * e2 - 3 * mu**4
            yield f"kurtosis_{w}", _mask(m4 / (m2 * m2) - 3.0, ok)


def _autocorr(ctx: _Ctx) -> Features:
    """Lag-1 autocorrelation: corr(r[t], r[t-1]) over the w - 1 pairs inside w returns."""
    n_pairs = [w - 1 for w in _AUTOCORR_W]
    s2 = _sums(ctx, ctx.r0 * ctx.r0, [(n, lag) for n in n_pairs for lag in (0, 1)])
    lagged = np.zeros_like(ctx.r0)
    np.multiply(ctx.r0[1:], ctx.r0[:-1], out=lagged[1:])
    sxy = _sums(ctx, lagged, ((n, 0) for n in n_pairs))
    del lagged
    for w, n in zip(_AUTOCORR_W, n_pairs, strict=True):
        sx, sy = _return_sum(ctx, n, 0), _return_sum(ctx, n, 1)
        cov = sxy[n, 0] - sx * sy / n
        vx, vy = s2[n, 0] - sx * sx / n, s2[n, 1] - sy * sy / n
        yield f"autocorr_{w}", _mask(cov / np.sqrt(vx * vy), ctx.full(w))


def _extremes(ctx: _Ctx) -> Features:
    """Share of up days, and the largest and smallest daily log return."""
    up = _sums(ctx, (ctx.r0 > 0).astype(np.float64), ((w, 0) for w in _UP_W))
    for w in _UP_W:
        yield f"up_fraction_{w}", _mask(up[w, 0] / w, ctx.full(w))
    highs = _rolling_max_at(ctx.r0, _EXTREME_W, ctx.days)
    for w in _EXTREME_W:
        yield f"max_return_{w}", _mask(highs[w], ctx.full(w))
    lows = _rolling_max_at(-ctx.r0, _EXTREME_W, ctx.days)
    for w in _EXTREME_W:
        yield f"min_return_{w}", _mask(-lows[w], ctx.full(w))


def _filled_log_price(ctx: _Ctx) -> F64:
    return np.nan_to_num(ctx.lp, nan=0.0)


def _trend_sma(ctx: _Ctx) -> Features:
    """Price versus simple moving averages and the linear trend of log price.

    Windows here count prices: w prices ⇒ w - 1 returns must be computable.
    """
    lp0 = _filled_log_price(ctx)
    sma_w = {*_SMA_W, *(w for pair in _SMA_CROSS for w in pair), *_SLOPE_W, *_R2_W}
    sl = _sums(ctx, lp0, ((w, 0) for w in sma_w))
    stl = _sums(
        ctx, lp0 * np.arange(len(lp0), dtype=np.float64)[:, None], ((w, 0) for w in _SLOPE_W)
    )
    sll = _sums(ctx, lp0 * lp0, ((w, 0) for w in _R2_W))
    del lp0
    current = _at(ctx.lp, ctx.days, 0)
    for w in _SMA_W:
        yield f"price_sma_{w}", _mask(current - sl[w, 0] / w, ctx.full(w - 1))
    for a, b in _SMA_CROSS:
        yield f"sma_cross_{a}_{b}", _mask(sl[a, 0] / a - sl[b, 0] / b, ctx.full(b - 1))
    for w in _SLOPE_W:
        t_mean = (ctx.days - (w - 1) / 2)[:, None]
        sxx = w * (w * w - 1) / 12  # Σ (t - t_mean)²
        sxy = stl[w, 0] - t_mean * sl[w, 0]
        yield f"trend_slope_{w}", _mask(sxy / sxx, ctx.full(w - 1))
        if w in _R2_W:
            syy = sll[w, 0] - sl[w, 0] ** 2 / w
            yield f"trend_r2_{w}", _mask(sxy * sxy / (sxx * syy), ctx.full(w - 1))


def _ema_full(x0: F64, span: int) -> F64:
    """EMA of every row over its last `_ema_window(span)` rows, weights renormalised.

    From the untruncated zero-start filter y: ema[t] = (y[t] - λ^K y[t-K]) / (1 - λ^K).
    """
    from scipy.signal import lfilter  # ~1 s to import: only when features are computed

    alpha = 2.0 / (span + 1)
    k = _ema_window(span)
    decay = (1.0 - alpha) ** k
    y = np.asarray(lfilter([alpha], [1.0, alpha - 1.0], x0, axis=0), dtype=np.float64)
    y[k:] -= decay * y[:-k]
    y /= 1.0 - decay
    return y


def _trend_ema(ctx: _Ctx) -> Features:
    lp0 = _filled_log_price(ctx)
    current = _at(ctx.lp, ctx.days, 0)
    spans = sorted({*_EMA_SPANS, *(s for pair in _MACD for s in pair)})
    ema = {span: _ema_full(lp0, span)[ctx.days] for span in spans}
    for span in _EMA_SPANS:
        yield f"price_ema_{span}", _mask(current - ema[span], ctx.full(_ema_window(span) - 1))
    for fast, slow in _MACD:
        macd = ema[fast] - ema[slow]
        yield f"macd_{fast}_{slow}", _mask(macd, ctx.full(_ema_window(slow) - 1))
    yield "macd_hist_12_26_9", _macd_hist(ctx, lp0, 12, 26)


def _macd_hist(ctx: _Ctx, lp0: F64, fast: int, slow: int) -> F64:
    """MACD minus its own EMA (the signal line) at the requested days."""
    macd = _ema_full(lp0, fast)
    macd -= _ema_full(lp0, slow)
    hist = macd[ctx.days] - _ema_full(macd, _MACD_SIGNAL)[ctx.days]
    rows = _ema_window(slow) + _ema_window(_MACD_SIGNAL) - 1  # prices feeding the signal
    return _mask(hist, ctx.full(rows - 1))


def _drawdown(ctx: _Ctx) -> Features:
    """Log distance from the rolling max (drawdown, <= 0) and min (rebound, >= 0) price."""
    lp0 = _filled_log_price(ctx)
    highs = _rolling_max_at(lp0, _DRAWDOWN_W, ctx.days)
    np.negative(lp0, out=lp0)
    lows = _rolling_max_at(lp0, _DRAWDOWN_W, ctx.days)
    del lp0
    current = _at(ctx.lp, ctx.days, 0)
    for w in _DRAWDOWN_W:
        yield f"drawdown_{w}", _mask(current - highs[w], ctx.full(w - 1))
    for w in _DRAWDOWN_W:
        yield f"rebound_{w}", _mask(current + lows[w], ctx.full(w - 1))


# --- market stage ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fit:
    """Population moments of (stock, market) daily log returns over one window."""

    mu_r: F64  # (D, N)
    mu_m: F64  # (D, 1)
    var_r: F64  # (D, N)
    var_m: F64  # (D, 1)
    cov: F64  # (D, N)
    ok: Mask  # (D, N)

    @property
    def beta(self) -> F64:
        return _mask(self.cov / self.var_m, self.ok)


def _fit(ctx: _Ctx, w: int, s2: F64, srm: F64) -> _Fit:
    """Moments from the window sums of r² (s2) and r·m (srm) over the w returns to d."""
    mu_r = _return_sum(ctx, w) / w
    mu_m = _market_sum(ctx, w) / w
    e_mm = _window_sum(_prefix(ctx.m0 * ctx.m0), ctx.days, w)[:, None] / w
    return _Fit(
        mu_r=mu_r,
        mu_m=mu_m,
        var_r=s2 / w - mu_r * mu_r,
        var_m=e_mm - mu_m * mu_m,
        cov=srm / w - mu_r * mu_m,
        ok=ctx.full(w) & ctx.market_full(w),
    )


def _market_fits(ctx: _Ctx, windows: Iterable[int]) -> dict[int, _Fit]:
    keys = [(w, 0) for w in windows]
    s2 = _sums(ctx, ctx.r0 * ctx.r0, keys)
    srm = _sums(ctx, ctx.r0 * ctx.m0[:, None], keys)
    return {w: _fit(ctx, w, s2[w, 0], srm[w, 0]) for w, _ in keys}


def _market(ctx: _Ctx) -> Features:
    fits = _market_fits(ctx, sorted({*_BETA_W, *_COSKEW_W, _RESID_BETA_W}))
    for w in _BETA_W:
        yield f"beta_{w}", fits[w].beta
    for w in _BETA_W:
        f = fits[w]
        yield f"market_corr_{w}", _mask(f.cov / np.sqrt(f.var_r * f.var_m), f.ok)
    for w in _BETA_W:
        f = fits[w]
        idio = np.sqrt(np.maximum(f.var_r - f.cov * f.cov / f.var_m, 0.0))
        yield f"idio_volatility_{w}", _mask(idio, f.ok)
    yield from _downside_beta(ctx)
    yield from _coskewness(ctx, fits)
    beta = fits[_RESID_BETA_W].beta
    del fits
    for h, s in _RESID_MOM:
        yield f"residual_momentum_{h}_{s}", _residual_return(ctx, beta, h, s)
    for w in _RESID_RETURN_W:
        yield f"residual_return_{w}", _residual_return(ctx, beta, w, 0)


def _residual_return(ctx: _Ctx, beta: F64, h: int, s: int) -> F64:
    """Stock log return over d-h..d-s minus beta times the market's over the same span."""
    market = _mask(_market_sum(ctx, h - s, s), ctx.market_full(h - s, s))
    return _log_return(ctx, h, s) - beta * market


def _downside_beta(ctx: _Ctx) -> Features:
    """Beta estimated on the window's days when the market fell."""
    down = (ctx.m0 < 0).astype(np.float64)
    m_down = ctx.m0 * down
    keys = [(w, 0) for w in _DOWN_BETA_W]
    sr = _sums(ctx, ctx.r0 * down[:, None], keys)
    srm = _sums(ctx, ctx.r0 * m_down[:, None], keys)
    for w in _DOWN_BETA_W:
        n, sm, smm = (
            _window_sum(_prefix(x), ctx.days, w)[:, None] for x in (down, m_down, m_down * ctx.m0)
        )
        cov = srm[w, 0] / n - (sr[w, 0] / n) * (sm / n)
        var = smm / n - (sm / n) ** 2
        ok = ctx.full(w) & ctx.market_full(w) & (n >= 2)
        yield f"downside_beta_{w}", _mask(cov / var, ok)


def _coskewness(ctx: _Ctx, fits: dict[int, _Fit]) -> Features:
    """E[(r - μr)(m - μm)²] / (σr σm²)."""
    m2 = ctx.m0 * ctx.m0
    srmm = _sums(ctx, ctx.r0 * m2[:, None], ((w, 0) for w in _COSKEW_W))
    for w in _COSKEW_W:
        f = fits[w]
        e_rm = f.cov + f.mu_r * f.mu_m
        num = srmm[w, 0] / w - 2 * f.mu_m * e_rm + f.mu_m**2 * f.mu_r - f.mu_r * f.var_m
        yield f"coskewness_{w}", _mask(num / (np.sqrt(f.var_r) * f.var_m), f.ok)


# --- volume stage ------------------------------------------------------------------------


def _volume(ctx: _Ctx, close: F64, volume: F64) -> Features:
    """Liquidity features; a day counts when its price is present and its volume is > 0."""
    traded = np.isfinite(ctx.lp) & np.isfinite(volume) & (volume > 0)
    counts = _count_prefix(traded)
    v0 = np.where(traded, volume, 0.0)

    def full(w: int) -> Mask:
        return _full_window(counts, ctx.days, w, 0)

    yield from _dollar_volume(ctx, np.where(traded, close * volume, 0.0), v0, full)
    del traded
    lv = np.log(v0, out=np.zeros_like(v0), where=v0 > 0)
    del v0
    yield from _volume_dispersion(ctx, lv, full)


def _dollar_volume(ctx: _Ctx, dv: F64, v0: F64, full: Callable[[int], Mask]) -> Features:
    sdv = _sums(ctx, dv, ((w, 0) for w in _DOLLAR_VOLUME_W))
    for w in _DOLLAR_VOLUME_W:
        yield f"log_dollar_volume_{w}", _mask(np.log(sdv[w, 0] / w), full(w))
    sv = _sums(ctx, v0, ((w, 0) for pair in _VOLUME_RATIOS for w in pair))
    for a, b in _VOLUME_RATIOS:
        ratio = (sv[a, 0] / a) / (sv[b, 0] / b)
        yield f"volume_ratio_{a}_{b}", _mask(np.log(ratio), full(b))
    impact = np.divide(np.abs(ctx.r0), dv, out=np.zeros_like(dv), where=dv > 0)
    si = _sums(ctx, impact, ((w, 0) for w in _AMIHUD_W))
    del impact
    for w in _AMIHUD_W:
        yield f"amihud_{w}", _mask(np.log(si[w, 0] / w), ctx.full(w) & full(w))


def _volume_dispersion(ctx: _Ctx, lv: F64, full: Callable[[int], Mask]) -> Features:
    """Std of log volume, and corr(|daily return|, log volume)."""
    windows = sorted({*_VOLUME_VOL_W, *_ABS_RET_VOLUME_CORR_W})
    keys = [(w, 0) for w in windows]
    sl, sll = _sums(ctx, lv, keys), _sums(ctx, lv * lv, keys)
    corr_keys = [(w, 0) for w in _ABS_RET_VOLUME_CORR_W]
    abs_r = np.abs(ctx.r0)
    sa, sal = _sums(ctx, abs_r, corr_keys), _sums(ctx, abs_r * lv, corr_keys)
    del abs_r
    saa = _sums(ctx, ctx.r0 * ctx.r0, corr_keys)
    var_l = {w: (sll[w, 0] - sl[w, 0] ** 2 / w) / (w - 1) for w in windows}
    for w in _VOLUME_VOL_W:
        yield f"volume_volatility_{w}", _mask(np.sqrt(np.maximum(var_l[w], 0.0)), full(w))
    for w in _ABS_RET_VOLUME_CORR_W:
        cov = (sal[w, 0] - sa[w, 0] * sl[w, 0] / w) / (w - 1)
        var_a = (saa[w, 0] - sa[w, 0] ** 2 / w) / (w - 1)
        corr = cov / np.sqrt(var_a * var_l[w])
        yield f"abs_return_volume_corr_{w}", _mask(corr, ctx.full(w) & full(w))


# --- features of features ----------------------------------------------------------------


def _derived(get: Getter) -> Features:
    """Ratios and differences of already computed features (NaN propagates)."""
    for h, s in _MOM_SHARPE:
        yield f"momentum_sharpe_{h}_{s}", get(f"momentum_{h}_{s}") / get(f"volatility_{h}")
    yield "momentum_accel_63_126", get("momentum_63_0") - get("momentum_126_63")
    for w, v in _VOLSCALED:
        yield f"return_{w}_volscaled_{v}", get(f"return_{w}") / get(f"volatility_{v}")
    for a, b in _VOL_RATIOS:
        yield f"volatility_ratio_{a}_{b}", get(f"volatility_{a}") / get(f"volatility_{b}")
    for w in _DOWNSIDE_RATIO_W:
        ratio = get(f"downside_volatility_{w}") / get(f"volatility_{w}")
        yield f"downside_ratio_{w}", ratio
    yield "macd_volscaled_12_26", get("macd_12_26") / get("volatility_63")
    for w in _RANGE_W:
        up, down = get(f"rebound_{w}"), get(f"drawdown_{w}")
        yield f"range_position_{w}", up / (up - down)
    yield "beta_change_63_252", get("beta_63") - get("beta_252")
    idio = get("idio_volatility_252") * np.sqrt(252 - 21)
    yield "residual_momentum_tstat_252_21", get("residual_momentum_252_21") / idio


def _sector_relative(get: Getter, codes: npt.NDArray[np.int32], bases: Iterable[str]) -> Features:
    for base in bases:
        yield f"sector_rel_{base}", _sector_demeaned(get(base), codes)


def _sector_demeaned(values: F64, codes: npt.NDArray[np.int32]) -> F64:
    """Values minus the mean of their sector on the same day, over tickers with a value."""
    onehot = np.zeros((len(codes), int(codes.max(initial=-1)) + 1))
    onehot[np.arange(len(codes)), codes] = 1.0
    present = np.isfinite(values)
    sums = np.where(present, values, 0.0) @ onehot
    counts = present.astype(np.float64) @ onehot
    return values - (sums / counts)[:, codes]


# --- public API --------------------------------------------------------------------------


_PRICE_STAGES: tuple[Callable[[_Ctx], Features], ...] = (
    _momentum,
    _volatility,
    _moments,
    _autocorr,
    _extremes,
    _trend_sma,
    _trend_ema,
    _drawdown,
    _market,
)


def _check_days(days: npt.ArrayLike, n_rows: int) -> I64:
    d = np.asarray(days)
    if d.ndim != 1 or (d.size and not np.issubdtype(d.dtype, np.integer)):
        raise ValueError("days must be a 1-d array of integer row positions")
    d = d.astype(np.int64)
    if d.size and (d[0] < 0 or d[-1] >= n_rows or bool(np.any(np.diff(d) < 0))):
        raise ValueError(f"days must be sorted row positions in [0, {n_rows})")
    return d


def compute_features(panel: Panel, days: np.ndarray) -> np.ndarray:
    """Features at the given rows: float32 (len(days), n_tickers, n_features).

    Columns follow `feature_specs(panel.volume is not None)`; NaN where a value cannot be
    computed from the rows up to that day.
    """
    rows = _check_days(days, len(panel.close.index))
    specs = feature_specs(panel.volume is not None)
    column = {spec.name: j for j, spec in enumerate(specs)}
    out = np.full((len(rows), panel.close.shape[1], len(specs)), np.nan, dtype=np.float32)
    written: set[str] = set()

    def put(features: Features) -> None:
        for name, values in features:
            stored = values.astype(np.float32)
            np.copyto(stored, np.float32(np.nan), where=~np.isfinite(stored))  # inf → NaN
            out[:, :, column[name]] = stored
            written.add(name)

    def get(name: str) -> F64:
        return out[:, :, column[name]].astype(np.float64)

    if len(rows) == 0:
        return out
    with np.errstate(all="ignore"):
        ctx = _context(panel, rows)
        for stage in _PRICE_STAGES:
            put(stage(ctx))
        if panel.volume is not None:
            read = _rows_read(rows)
            close = panel.close.to_numpy(dtype=np.float64)[read]
            put(_volume(ctx, close, panel.volume.to_numpy(dtype=np.float64)[read]))
        del ctx
        put(_derived(get))
        bases = _SECTOR_BASES + (_SECTOR_VOLUME_BASES if panel.volume is not None else ())
        put(_sector_relative(get, panel.sector_codes(), bases))
    if written != set(column):
        raise RuntimeError(f"features not computed: {sorted(set(column) - written)}")
    return out


def market_beta(panel: Panel, days: np.ndarray, window: int = 252) -> np.ndarray:
    """OLS beta of daily log returns on the market's over the `window` returns to each day.

    float64 (len(days), n_tickers); NaN without a full window of stock and market returns.
    """
    if window < 2:
        raise ValueError("window must be at least 2 returns")
    rows = _check_days(days, len(panel.close.index))
    if len(rows) == 0:
        return np.empty((0, panel.close.shape[1]), dtype=np.float64)
    with np.errstate(all="ignore"):
        fit = _market_fits(_context(panel, rows), [window])[window]
        beta = fit.beta
    beta[~np.isfinite(beta)] = np.nan
    return beta
