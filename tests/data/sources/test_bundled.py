"""The bundled S&P 500 panel: offline, complete and well-formed."""

from __future__ import annotations

import socket
from typing import Any, NoReturn

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.panel import UNKNOWN_SECTOR, Panel
from crowdquant.data.sources.bundled import SP500_SECTORS, load_bundled_panel


def _no_network(*args: Any, **kwargs: Any) -> NoReturn:
    raise AssertionError("the bundled panel must not touch the network")


@pytest.fixture(scope="module")
def panel() -> Panel:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(socket.socket, "connect", _no_network)
        mp.setattr(socket.socket, "connect_ex", _no_network)
        mp.setattr(socket, "create_connection", _no_network)
        mp.setenv("SKFOLIO_DATA", "/nonexistent/skfolio-data-home")  # no cache needed
        return load_bundled_panel()


def test_shape_and_dates(panel: Panel) -> None:
    assert panel.name == "bundled"
    assert panel.close.shape == (8313, 20)
    assert panel.dates[0] == pd.Timestamp("1990-01-02")
    assert panel.dates[-1] == pd.Timestamp("2022-12-28")
    assert panel.dates.dtype == np.dtype("datetime64[ns]")
    assert panel.dates.tz is None
    assert panel.dates.is_unique and panel.dates.is_monotonic_increasing
    assert (panel.dates == panel.dates.normalize()).all()


def test_prices_complete_and_positive(panel: Panel) -> None:
    assert (panel.close.dtypes == np.float64).all()
    assert not panel.close.isna().any().any()
    assert (panel.close.to_numpy() > 0).all()
    assert panel.volume is None


def test_market_aligned(panel: Panel) -> None:
    assert panel.market.index.equals(panel.close.index)
    assert panel.market.dtype == np.float64
    assert not panel.market.isna().any()
    assert (panel.market > 0).all()
    assert panel.market.iloc[0] == pytest.approx(359.69)


def test_every_ticker_has_a_known_sector(panel: Panel) -> None:
    assert set(panel.tickers) == set(SP500_SECTORS)
    sectors = panel.sector.reindex(panel.close.columns)
    assert not sectors.isna().any()
    assert UNKNOWN_SECTOR not in set(sectors)
    assert sectors["AAPL"] == "Information Technology"
    assert sectors["JPM"] == "Financials"
    assert sectors.nunique() == 7
