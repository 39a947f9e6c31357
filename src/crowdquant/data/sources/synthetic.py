"""A synthetic market: a deterministic factor model that produces a daily `Panel`.

Daily log returns of stock i on day d (week w = d // 5) are

    r[d, i] = beta[i] · m[d]                      market factor, vol regime exp(h[w])
            + g[d, sector(i)]                     sector factors, same regime
            + Σ_k f[d, k] · e[w, k, i]            style factors × exposures (AR(1) by week)
            + σ[w, i] · ε[d, i]                   idiosyncratic noise, smaller stocks noisier
            + alpha[w - 1, i]                     the planted alpha (see below)

The first style exposure is *size*: it sets the idiosyncratic volatility
σ = idio_vol · scale[i] · exp(-size_vol_elasticity · size) and the volume level.

The planted alpha is known exactly. At each era day d (a Friday), from the closes so far,

    signal = z(log(close[d-21] / close[d-126])) − z(log(close[d] / close[d-5]))
    alpha  = alpha_strength · z(signal)

with z the cross-sectional z-score (ddof=0); it is added to every daily return of the
following week. Before 126 days of history exist the alpha is 0.

Trading days are business days (Mon–Fri, no holidays) from a Monday `start`; every week
has five days and its era day is the Friday. Each week is drawn from its own generator,
`np.random.default_rng([seed, 1, week])` (static traits from `[seed, 0]`), and weeks are
generated strictly in order, so the first w weeks never depend on how many are asked for.

The market index is the equal-weighted index of the generated stocks: 1.0 on the first day
(whose closes are the initial prices), then compounded by the mean simple daily return.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Annotated

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from crowdquant.data.panel import Panel

DAYS_PER_WEEK = 5
MOMENTUM_LOOKBACK = 126
MOMENTUM_SKIP = 21
REVERSAL_LOOKBACK = 5

_STATIC_STREAM = 0
_WEEK_STREAM = 1
_INITIAL_LOG_PRICE = float(np.log(30.0))
_INITIAL_PRICE_DISPERSION = 0.6

Persistence = Annotated[float, Field(gt=0.0, lt=1.0)]
FloatArray = np.ndarray[tuple[int, ...], np.dtype[np.float64]]
IntArray = np.ndarray[tuple[int, ...], np.dtype[np.int64]]


class SyntheticConfig(BaseModel):
    """Knobs of the synthetic market. Volatilities and drifts are per day, in log return.

    alpha_strength: the planted alpha's expected daily log return per cross-sectional
    standard deviation of the signal (3e-4 = 3 bp a day, a weekly rank IC of about 0.03);
    0 disables it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_stocks: int = Field(default=500, ge=1)
    n_weeks: int = Field(default=320, ge=1, description="weeks generated, warm-up included")
    n_sectors: int = Field(default=11, ge=1)
    seed: int = Field(default=0, ge=0)
    start: dt.date = dt.date(2000, 1, 3)
    alpha_strength: float = Field(default=3e-4, ge=0.0, allow_inf_nan=False)

    market_drift: float = Field(default=1e-4, allow_inf_nan=False)
    market_vol: float = Field(default=0.01, gt=0.0, allow_inf_nan=False)
    vol_regime_persistence: Persistence = 0.97
    vol_regime_scale: float = Field(default=0.35, ge=0.0, allow_inf_nan=False)
    beta_dispersion: float = Field(default=0.25, ge=0.0, allow_inf_nan=False)
    sector_vol: float = Field(default=0.006, ge=0.0, allow_inf_nan=False)
    sector_concentration: float = Field(
        default=2.0, gt=0.0, allow_inf_nan=False, description="Dirichlet; smaller is more uneven"
    )
    slow_persistence: tuple[Persistence, ...] = Field(
        default=(0.99, 0.97, 0.95, 0.92),
        min_length=1,
        description="weekly AR(1) of slow styles; the first is size",
    )
    fast_persistence: tuple[Persistence, ...] = (0.7, 0.5, 0.3)
    style_vol: float = Field(default=0.004, ge=0.0, allow_inf_nan=False)
    idio_vol: float = Field(default=0.018, gt=0.0, allow_inf_nan=False)
    idio_vol_dispersion: float = Field(default=0.4, ge=0.0, allow_inf_nan=False)
    size_vol_elasticity: float = Field(default=0.3, ge=0.0, allow_inf_nan=False)
    base_volume: float = Field(default=1e6, gt=0.0, allow_inf_nan=False)
    volume_dispersion: float = Field(default=0.5, ge=0.0, allow_inf_nan=False)
    volume_size_loading: float = Field(default=1.0, allow_inf_nan=False)
    volume_abs_return_loading: float = Field(default=15.0, ge=0.0, allow_inf_nan=False)
    volume_noise: float = Field(default=0.3, ge=0.0, allow_inf_nan=False)

    @field_validator("start")
    @classmethod
    def _start_on_monday(cls, value: dt.date) -> dt.date:
        if value.weekday() != 0:
            raise ValueError(f"start must be a Monday, got {value:%A} {value}")
        return value

    @model_validator(mode="after")
    def _enough_stocks(self) -> SyntheticConfig:
        if self.n_sectors > self.n_stocks:
            raise ValueError(
                f"n_sectors ({self.n_sectors}) must not exceed n_stocks ({self.n_stocks})"
            )
        return self

    @property
    def persistence(self) -> tuple[float, ...]:
        """Weekly persistence of every style exposure: slow ones first, size at 0."""
        return self.slow_persistence + self.fast_persistence


@dataclass(frozen=True)
class _Static:
    """Per-stock traits fixed for the life of the market."""

    tickers: pd.Index
    sector: pd.Series
    sector_codes: IntArray
    beta: FloatArray
    idio_scale: FloatArray
    volume_level: FloatArray


@dataclass(frozen=True)
class _State:
    """What carries from one week to the next."""

    week: int
    exposures: FloatArray  # styles × stocks, the exposures of the last generated week
    log_vol_regime: float
    log_price: FloatArray
    market_level: float
    alpha: FloatArray  # added to every daily return of the next week


@dataclass(frozen=True)
class _Week:
    close: FloatArray  # 5 × stocks
    volume: FloatArray  # 5 × stocks
    market: FloatArray  # 5


def _labels(prefix: str, count: int, width: int) -> list[str]:
    digits = max(width, len(str(count)))
    return [f"{prefix}{k:0{digits}d}" for k in range(1, count + 1)]


def _assign_sectors(
    rng: np.random.Generator, n_stocks: int, n_sectors: int, concentration: float
) -> IntArray:
    """Uneven sector sizes (Dirichlet shares), every sector non-empty, shuffled over stocks."""
    shares = rng.dirichlet(np.full(n_sectors, concentration))
    counts = 1 + rng.multinomial(n_stocks - n_sectors, shares)
    return rng.permutation(np.repeat(np.arange(n_sectors, dtype=np.int64), counts))


def _draw_static(config: SyntheticConfig) -> tuple[_Static, _State]:
    """Static traits and the state before week 0, from the seed's static stream."""
    rng = np.random.default_rng([config.seed, _STATIC_STREAM])
    n = config.n_stocks
    codes = _assign_sectors(rng, n, config.n_sectors, config.sector_concentration)
    tickers = pd.Index(_labels("S", n, 4))
    sector_names = np.array(_labels("sector_", config.n_sectors, 2))
    dispersion = config.idio_vol_dispersion
    static = _Static(
        tickers=tickers,
        sector=pd.Series(sector_names[codes], index=tickers, name="sector"),
        sector_codes=codes,
        beta=1.0 + config.beta_dispersion * rng.standard_normal(n),
        idio_scale=np.exp(dispersion * rng.standard_normal(n) - dispersion**2 / 2),
        volume_level=config.volume_dispersion * rng.standard_normal(n),
    )
    state = _State(
        week=0,
        exposures=rng.standard_normal((len(config.persistence), n)),
        log_vol_regime=0.0,
        log_price=_INITIAL_LOG_PRICE + _INITIAL_PRICE_DISPERSION * rng.standard_normal(n),
        market_level=1.0,
        alpha=np.zeros(n),
    )
    return static, state


def _ar1(previous: FloatArray, persistence: FloatArray, shock: FloatArray) -> FloatArray:
    """One step of a unit-variance stationary AR(1)."""
    return persistence * previous + np.sqrt(1.0 - persistence**2) * shock


def _simulate_week(
    config: SyntheticConfig, static: _Static, state: _State, rng: np.random.Generator
) -> tuple[_Week, _State]:
    """Draw one week of closes, volumes and market levels; the alpha is left to the caller."""
    n_styles, n = state.exposures.shape
    days = DAYS_PER_WEEK
    phi = np.asarray(config.persistence, dtype=np.float64)[:, None]
    exposures = _ar1(state.exposures, phi, rng.standard_normal((n_styles, n)))
    rho = config.vol_regime_persistence
    h = rho * state.log_vol_regime + np.sqrt(1 - rho**2) * config.vol_regime_scale * (
        rng.standard_normal()
    )
    regime = float(np.exp(h))
    market = config.market_drift + config.market_vol * regime * rng.standard_normal(days)
    sectors = config.sector_vol * regime * rng.standard_normal((days, config.n_sectors))
    styles = config.style_vol * rng.standard_normal((days, n_styles))
    size = exposures[0]
    idio_sd = config.idio_vol * static.idio_scale * np.exp(-config.size_vol_elasticity * size)

    returns = market[:, None] * static.beta
    returns += sectors[:, static.sector_codes]
    returns += styles @ exposures
    returns += idio_sd * rng.standard_normal((days, n))
    returns += state.alpha
    if state.week == 0:
        returns[0] = 0.0  # the first close is the initial price

    log_volume = (
        np.log(config.base_volume)
        + config.volume_size_loading * size
        + static.volume_level
        + config.volume_abs_return_loading * np.abs(returns)
        + config.volume_noise * rng.standard_normal((days, n))
    )
    log_price = state.log_price + np.cumsum(returns, axis=0)
    growth = 1.0 + np.expm1(returns).mean(axis=1)
    market_level = np.cumprod(np.concatenate((np.full(1, state.market_level), growth)))[1:]

    week = _Week(close=np.exp(log_price), volume=np.exp(log_volume), market=market_level)
    new_state = replace(
        state,
        week=state.week + 1,
        exposures=exposures,
        log_vol_regime=float(h),
        log_price=log_price[-1],
        market_level=float(market_level[-1]),
    )
    return week, new_state


def _zscore(x: FloatArray) -> FloatArray:
    """Cross-sectional z-score (ddof=0); zeros when there is no dispersion."""
    centred = x - x.mean()
    sd = float(centred.std())
    return centred / sd if sd > 0 else np.zeros_like(centred)


def _planted_alpha(close: FloatArray, strength: float) -> FloatArray:
    """The alpha for the week after the last row of `close` (days × stocks, all history)."""
    d = close.shape[0] - 1
    if strength == 0 or d < MOMENTUM_LOOKBACK:
        return np.zeros(close.shape[1])
    momentum = np.log(close[d - MOMENTUM_SKIP] / close[d - MOMENTUM_LOOKBACK])
    reversal = np.log(close[d] / close[d - REVERSAL_LOOKBACK])
    return strength * _zscore(_zscore(momentum) - _zscore(reversal))


def _grown(buffer: FloatArray, rows: int) -> FloatArray:
    out = np.empty((rows, *buffer.shape[1:]))
    out[: buffer.shape[0]] = buffer
    return out


class SyntheticMarket:
    """The market of one config, generated lazily week by week and cached.

    Not thread-safe: share one instance across threads only behind a lock.
    """

    def __init__(self, config: SyntheticConfig) -> None:
        self.config = config
        self._static, self._state = _draw_static(config)
        n = config.n_stocks
        self._close: FloatArray = np.empty((0, n))
        self._volume: FloatArray = np.empty((0, n))
        self._market: FloatArray = np.empty(0)
        self._alpha: FloatArray = np.empty((0, n))

    @property
    def tickers(self) -> list[str]:
        return [str(t) for t in self._static.tickers]

    @property
    def sector(self) -> pd.Series:
        """Ticker → sector label ("sector_01", ...)."""
        return self._static.sector.copy()

    def panel(self, n_weeks: int | None = None) -> Panel:
        """The first `n_weeks` weeks (default config.n_weeks) as a daily panel."""
        weeks = self._generate(n_weeks)
        days = weeks * DAYS_PER_WEEK
        dates = self.dates(weeks)
        tickers = self._static.tickers
        return Panel(  # copy=True: the frames never share memory with the cache
            close=pd.DataFrame(self._close[:days], index=dates, columns=tickers, copy=True),
            volume=pd.DataFrame(self._volume[:days], index=dates, columns=tickers, copy=True),
            sector=self._static.sector.copy(),
            market=pd.Series(self._market[:days], index=dates, name="market", copy=True),
            name="synthetic",
        )

    def alpha(self, n_weeks: int | None = None) -> pd.DataFrame:
        """The planted alpha per era day (Friday) × ticker for the first `n_weeks` weeks.

        Row d is the expected daily log return added on each day of the week after d.
        """
        weeks = self._generate(n_weeks)
        eras = self.dates(weeks)[DAYS_PER_WEEK - 1 :: DAYS_PER_WEEK]
        tickers = self._static.tickers
        return pd.DataFrame(self._alpha[:weeks], index=eras, columns=tickers, copy=True)

    def dates(self, n_weeks: int | None = None) -> pd.DatetimeIndex:
        """The trading days of the first `n_weeks` weeks."""
        weeks = self._weeks(n_weeks)
        return pd.bdate_range(self.config.start, periods=weeks * DAYS_PER_WEEK)

    def _weeks(self, n_weeks: int | None) -> int:
        weeks = self.config.n_weeks if n_weeks is None else n_weeks
        if isinstance(weeks, bool) or not isinstance(weeks, int | np.integer) or weeks < 1:
            raise ValueError(f"n_weeks must be a positive integer, got {weeks!r}")
        return int(weeks)

    def _generate(self, n_weeks: int | None) -> int:
        """Extend the cache to at least `n_weeks` weeks; return that number."""
        weeks = self._weeks(n_weeks)
        if weeks <= self._state.week:
            return weeks
        self._reserve(weeks)
        config, static = self.config, self._static
        while self._state.week < weeks:
            w = self._state.week
            rng = np.random.default_rng([config.seed, _WEEK_STREAM, w])
            week, state = _simulate_week(config, static, self._state, rng)
            rows = slice(w * DAYS_PER_WEEK, (w + 1) * DAYS_PER_WEEK)
            self._close[rows] = week.close
            self._volume[rows] = week.volume
            self._market[rows] = week.market
            alpha = _planted_alpha(self._close[: rows.stop], config.alpha_strength)
            self._alpha[w] = alpha
            self._state = replace(state, alpha=alpha)
        return weeks

    def _reserve(self, weeks: int) -> None:
        """Grow the buffers (geometrically) to hold at least `weeks` weeks."""
        capacity = self._alpha.shape[0]
        if weeks <= capacity:
            return
        capacity = max(weeks, 2 * capacity, self.config.n_weeks)
        days = capacity * DAYS_PER_WEEK
        self._close = _grown(self._close, days)
        self._volume = _grown(self._volume, days)
        self._market = _grown(self._market, days)
        self._alpha = _grown(self._alpha, capacity)
