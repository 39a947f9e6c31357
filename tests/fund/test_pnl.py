"""Booking P&L and summarising equity curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.fund.costs import CostModel
from crowdquant.fund.pnl import book_pnl, drawdown, equity_curve, performance, periods_per_year

FREE = CostModel(commission_bps=0.0, half_spread_bps=0.0)


def test_a_period_is_booked_by_hand() -> None:
    weights = pd.Series({"A": 0.5, "B": -0.5})
    returns = pd.Series({"A": 0.10, "B": -0.02, "C": np.nan})  # C is not held
    previous = pd.Series({"A": 0.2, "C": -0.1})
    booked = book_pnl(weights, returns, CostModel(), previous, days=5)
    assert booked.gross == pytest.approx(0.5 * 0.10 + 0.5 * 0.02)
    assert booked.traded == pytest.approx(0.3 + 0.5 + 0.1)
    assert booked.cost == pytest.approx(0.9 * 6e-4)
    assert booked.net == pytest.approx(booked.gross - booked.cost)
    growth = 1 + booked.net
    assert booked.drifted["A"] == pytest.approx(0.5 * 1.10 / growth)
    assert booked.drifted["B"] == pytest.approx(-0.5 * 0.98 / growth)
    assert booked.drifted["C"] == 0.0


def test_a_first_book_pays_for_building_itself() -> None:
    booked = book_pnl(
        pd.Series({"A": 0.5, "B": -0.5}), pd.Series({"A": 0.0, "B": 0.0}), CostModel()
    )
    assert booked.traded == pytest.approx(1.0)
    assert booked.net == pytest.approx(-6e-4)


def test_a_held_ticker_needs_a_return() -> None:
    with pytest.raises(ValueError, match="no realised return"):
        book_pnl(pd.Series({"A": 0.5, "B": -0.5}), pd.Series({"A": 0.01}), FREE)
    with pytest.raises(ValueError, match="finite"):
        book_pnl(pd.Series({"A": np.nan}), pd.Series({"A": 0.01}), FREE)


def test_equity_and_drawdown() -> None:
    net = pd.Series([0.10, -0.20, 0.05, 0.30])
    equity = equity_curve(net)
    assert equity.to_list() == pytest.approx([1.1, 0.88, 0.924, 1.2012])
    assert drawdown(equity).to_list() == pytest.approx([0.0, 0.2, 0.16, 0.0])
    # a loss in the first period is a drawdown from the starting equity
    assert drawdown(equity_curve(pd.Series([-0.1]))).iloc[0] == pytest.approx(0.1)


def weekly(net: list[float], traded: float = 0.5, cost: float = 0.0) -> pd.DataFrame:
    start = pd.bdate_range("2020-01-03", periods=len(net), freq="W-FRI")
    return pd.DataFrame(
        {
            "start": start,
            "end": start + pd.Timedelta(days=7),
            "net": net,
            "cost": cost,
            "traded": traded,
        }
    )


def test_performance_of_a_known_series() -> None:
    net = [0.01, -0.005] * 26
    figures = performance(weekly(net, traded=0.8, cost=0.0004))
    per_year = 52 * 365.25 / (52 * 7)
    assert figures.periods == 52 and figures.periods_per_year == pytest.approx(per_year)
    assert figures.hit_rate == 0.5
    mean, std = np.mean(net), np.std(net)
    assert figures.sharpe == pytest.approx(mean / std * np.sqrt(per_year))
    assert figures.annual_volatility == pytest.approx(std * np.sqrt(per_year))
    final = np.prod(1 + np.array(net))
    assert figures.total_return == pytest.approx(final - 1)
    assert figures.annual_return == pytest.approx(final ** (per_year / 52) - 1)
    assert figures.max_drawdown == pytest.approx(0.005)
    assert figures.turnover == pytest.approx(0.8)
    assert figures.annual_turnover == pytest.approx(0.8 * per_year)
    assert figures.annual_cost == pytest.approx(0.0004 * per_year)
    assert set(figures.as_dict()) >= {"sharpe", "max_drawdown", "hit_rate"}


def test_performance_of_nothing_is_nan() -> None:
    figures = performance(weekly([]))
    assert figures.periods == 0 and np.isnan(figures.sharpe)
    assert np.isnan(periods_per_year(pd.Series([], dtype=object), pd.Series([], dtype=object)))
    flat = performance(weekly([0.0, 0.0, 0.0]))
    assert np.isnan(flat.sharpe) and flat.max_drawdown == 0.0
