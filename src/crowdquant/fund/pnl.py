"""Booking a book's P&L over a holding period, and summarising a run of periods.

A book of weights w (fractions of equity) is traded into from the previous book p at the
start of a period and held to its end, each ticker returning r_i (simple return):

    gross = Σ w_i·r_i      cost = costs of trading w − p, plus borrow on the short side
    net   = gross − cost   equity_end = equity_start · (1 + net)

At the end the book has drifted to w_i·(1 + r_i) / (1 + net): that is the "previous book"
of the next rebalance. Returns are excess returns: a dollar-neutral book's cash and short
proceeds earn nothing here.

`performance` summarises periods of net returns: annualised (compounded) return, annualised
volatility, Sharpe (annualised mean over annualised volatility, as in `scoring.summary`),
maximum drawdown of the equity curve (its largest fall from a running peak, as a fraction),
turnover, hit rate (share of periods with a positive net return) and costs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.fund.costs import CostModel
from crowdquant.scoring.summary import summary_stats

DAYS_PER_YEAR = 365.25
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class BookedPnL:
    """One holding period's P&L, as fractions of the equity at its start."""

    gross: float
    cost: float
    net: float
    traded: float  # Σ|w − previous|
    drifted: pd.Series  # the book at the period's end (weights of the end equity)


def book_pnl(
    weights: pd.Series,
    returns: pd.Series,
    costs: CostModel,
    previous: pd.Series | None = None,
    *,
    days: int = 0,
) -> BookedPnL:
    """Book a period: trade from `previous` (none: from cash) into `weights`, then earn
    `returns` (ticker → simple return over the period) for `days` trading days.

    A held ticker without a finite return is refused: the caller decides what it earned.
    """
    if not np.isfinite(weights.to_numpy(np.float64)).all():
        raise ValueError("weights must be finite")
    index = weights.index
    if previous is not None and not previous.index.equals(index):
        index = index.union(previous.index)
    w = _values(weights, index)
    p = np.zeros(len(index)) if previous is None else _values(previous, index)
    r = (returns if returns.index.equals(index) else returns.reindex(index)).to_numpy(np.float64)
    held = w != 0
    missing = np.flatnonzero(held & ~np.isfinite(r))
    if len(missing):
        raise ValueError(
            f"no realised return for {len(missing)} held ticker(s), e.g. {index[missing[0]]}"
        )
    r = np.where(held, r, 0.0)
    gross = float(w @ r)
    cost = costs.trading_cost(w - p) + costs.borrow_cost(w, days)
    net = gross - cost
    drifted = w * (1.0 + r) / (1.0 + net) if net > -1.0 else np.zeros(len(w))
    return BookedPnL(
        gross=gross,
        cost=cost,
        net=net,
        traded=float(np.abs(w - p).sum()),
        drifted=pd.Series(drifted, index=index, name="weight"),
    )


def _values(weights: pd.Series, index: pd.Index) -> FloatArray:
    aligned = weights if weights.index.equals(index) else weights.reindex(index)
    values: FloatArray = np.nan_to_num(aligned.to_numpy(np.float64), nan=0.0)
    return values


def equity_curve(net: pd.Series) -> pd.Series:
    """Equity after each period, starting from 1."""
    return (1.0 + net.astype(np.float64)).cumprod().rename("equity")


def drawdown(equity: pd.Series) -> pd.Series:
    """Fall of equity from its running peak (the starting 1 included), as a fraction ≥ 0."""
    peak = equity.cummax().clip(lower=1.0)
    fall: pd.Series = 1.0 - equity / peak
    return fall.rename("drawdown")


@dataclass(frozen=True)
class Performance:
    """The summary of a run of holding periods (see the module docstring)."""

    annual_return: float
    annual_volatility: float
    sharpe: float
    max_drawdown: float
    turnover: float  # mean traded notional per rebalance, as a fraction of equity
    annual_turnover: float
    hit_rate: float
    annual_cost: float
    total_return: float
    periods: int
    periods_per_year: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def periods_per_year(start: pd.Series, end: pd.Series) -> float:
    """How many periods a year holds, from the calendar span they cover."""
    if len(start) == 0:
        return float("nan")
    span = (pd.Timestamp(end.iloc[-1]) - pd.Timestamp(start.iloc[0])).days
    return len(start) * DAYS_PER_YEAR / span if span > 0 else float("nan")


def performance(pnl: pd.DataFrame) -> Performance:
    """Summary of a per-period table with columns start, end (dates), net, cost, traded."""
    n = len(pnl)
    per_year = periods_per_year(pnl["start"], pnl["end"])
    if n == 0:
        nan = float("nan")
        return Performance(nan, nan, nan, nan, nan, nan, nan, nan, 0.0, 0, nan)
    net = pnl["net"].to_numpy(np.float64)
    stats = summary_stats(net)
    equity = equity_curve(pnl["net"])
    final = float(equity.iloc[-1])
    years = n / per_year
    annual_return = final ** (1.0 / years) - 1.0 if final > 0 else -1.0
    std = float(stats["std"])
    return Performance(
        annual_return=float(annual_return),
        annual_volatility=std * np.sqrt(per_year),
        sharpe=float(stats["mean"]) / std * np.sqrt(per_year) if std > 0 else float("nan"),
        max_drawdown=float(drawdown(equity).max()),
        turnover=float(pnl["traded"].mean()),
        annual_turnover=float(pnl["traded"].mean() * per_year),
        hit_rate=float(stats["positive_share"]),
        annual_cost=float(pnl["cost"].mean() * per_year),
        total_return=final - 1.0,
        periods=n,
        periods_per_year=float(per_year),
    )
