"""The linear commission + spread cost model."""

from __future__ import annotations

import pandas as pd
import pytest
from pydantic import ValidationError

from crowdquant.fund.costs import COST_MODEL_VERSION, CostModel


def test_trading_cost_is_bps_of_traded_notional_both_ways() -> None:
    model = CostModel(commission_bps=1.0, half_spread_bps=4.0)
    trades = pd.Series({"A": 0.3, "B": -0.2, "C": 0.0})
    assert model.bps_per_trade == 5.0
    assert model.trading_cost(trades) == pytest.approx(0.5 * 5e-4)
    assert model.trading_cost(-trades) == model.trading_cost(trades)
    assert model.trading_cost([0.0, 0.0]) == 0.0


def test_defaults_are_six_bps_and_no_borrow() -> None:
    model = CostModel()
    assert model.bps_per_trade == 6.0
    assert model.borrow_cost([0.5, -0.5], days=252) == 0.0
    assert model.version == COST_MODEL_VERSION


def test_borrow_is_charged_on_the_short_side_pro_rata() -> None:
    model = CostModel(borrow_bps_per_year=50.0)
    weights = pd.Series({"A": 1.0, "B": -0.6, "C": -0.4})
    assert model.borrow_cost(weights, days=252) == pytest.approx(1.0 * 50e-4)
    assert model.borrow_cost(weights, days=21) == pytest.approx(50e-4 * 21 / 252)
    assert model.borrow_cost(weights, days=0) == 0.0


def test_negative_costs_are_refused() -> None:
    with pytest.raises(ValidationError):
        CostModel(half_spread_bps=-1.0)
