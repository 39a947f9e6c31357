"""The operator's view behind a version: prices, betas, and ids back to tickers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.features import market_beta
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.fund.market import Market, signals_from_predictions, version_panel

from .conftest import MARKET


@pytest.fixture(scope="module")
def market() -> Market:
    panel = SyntheticMarket(SyntheticConfig(n_stocks=30, n_weeks=60, seed=1)).panel()
    close = panel.close.copy()
    close.iloc[100:, 0] = np.nan  # the first stock stops trading on day 100
    return Market(type(panel)(close, None, panel.sector, panel.market, panel.name), 63)


def test_returns_use_the_last_price_of_a_stock_that_stops(market: Market) -> None:
    close = market.panel.close
    returns = market.returns(90, 110)
    assert returns.iloc[1] == pytest.approx(close.iloc[110, 1] / close.iloc[90, 1] - 1)
    assert returns.iloc[0] == pytest.approx(close.iloc[99, 0] / close.iloc[90, 0] - 1)
    assert market.priced(99)[0] and not market.priced(100)[0]


def test_betas_are_the_data_layers_market_beta(market: Market) -> None:
    dates = market.panel.dates[[80, 150, 200]]
    betas = market.betas(dates)
    expected = market_beta(market.panel, np.array([80, 150, 200]), 63)
    np.testing.assert_allclose(betas.to_numpy(), expected)
    again = market.betas(dates[::-1])  # cached, and in the order asked for
    np.testing.assert_allclose(again.to_numpy(), expected[::-1])
    assert np.isnan(market.betas(market.panel.dates[[10]]).to_numpy()).all()  # too early


def test_an_unknown_day_is_named(market: Market) -> None:
    with pytest.raises(KeyError, match="1999-01-01"):
        market.day(pd.Timestamp("1999-01-01"))


def test_a_versions_panel_is_the_market_it_was_built_from(built: DatasetVersion) -> None:
    panel = version_panel(built)
    expected = SyntheticMarket(MARKET).panel()
    pd.testing.assert_frame_equal(panel.close, expected.close)


def test_predictions_map_back_to_era_dates_and_tickers(built: DatasetVersion) -> None:
    id_map = built.id_map()
    validation = id_map[id_map["data_type"] == "validation"]
    predictions = pd.Series(np.arange(len(validation), dtype=float), index=validation["id"])
    signals = signals_from_predictions(predictions, validation)
    assert signals.notna().sum().sum() == len(validation)
    row = validation.iloc[7]
    assert signals.loc[pd.Timestamp(row["date"]), row["ticker"]] == 7.0
    assert signals.index.is_monotonic_increasing
    assert set(signals.columns) <= set(version_panel(built).tickers)
    with pytest.raises(ValueError, match="not in the id map"):
        signals_from_predictions(pd.Series([0.5], index=["nope"]), validation)
