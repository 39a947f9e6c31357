"""The market panel: what it refuses, and its cuts by date."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.panel import Panel, PanelError


def panel(days: int = 6, volume: bool = True) -> Panel:
    dates = pd.bdate_range("2024-01-01", periods=days)  # Monday 1 January on
    tickers = ["AAA", "BBB", "CCC"]
    close = pd.DataFrame(
        np.arange(days * 3, dtype=np.float64).reshape(days, 3) + 1, index=dates, columns=tickers
    )
    return Panel(
        close=close,
        volume=close * 10 if volume else None,
        sector=pd.Series(["tech", "energy", "tech"], index=tickers),
        market=pd.Series(np.linspace(1.0, 2.0, days), index=dates, name="market"),
        name="test",
    )


def test_until_keeps_the_days_up_to_a_date_and_a_day_without_trading_keeps_the_one_before() -> None:
    full = panel()
    wednesday = full.until(pd.Timestamp("2024-01-03"))
    assert list(wednesday.dates.strftime("%a")) == ["Mon", "Tue", "Wed"]
    assert wednesday.close.equals(full.close.iloc[:3])
    assert full.volume is not None and wednesday.volume is not None
    assert wednesday.volume.equals(full.volume.iloc[:3])
    assert wednesday.market.equals(full.market.iloc[:3])
    saturday = full.until(pd.Timestamp("2024-01-06"))
    assert saturday.dates[-1] == pd.Timestamp("2024-01-05")
    assert len(full.until(pd.Timestamp("2023-12-31")).dates) == 0
    assert full.until(pd.Timestamp("2030-01-01")).close.equals(full.close)


def test_tail_keeps_the_last_days_and_never_more_than_there_are() -> None:
    full = panel(volume=False)
    assert full.tail(2).close.equals(full.close.iloc[-2:]) and full.tail(2).volume is None
    assert full.tail(99).close.equals(full.close)
    assert len(full.tail(0).dates) == 0


def test_a_cut_is_its_own_panel_a_change_to_it_leaves_the_whole_as_it_was() -> None:
    full = panel()
    cut = full.until(pd.Timestamp("2024-01-02"))
    cut.close.iloc[0, 0] = -1.0
    assert full.close.iloc[0, 0] == 1.0


def test_a_ticker_without_a_sector_is_named() -> None:
    full = panel()
    with pytest.raises(PanelError, match=r"sector missing for tickers: \['BBB'\]"):
        Panel(full.close, full.volume, full.sector.drop("BBB"), full.market, "test")


def test_sector_codes_number_the_sorted_labels_in_column_order() -> None:
    full = panel()
    shuffled = Panel(  # the sector series in another order than the columns
        close=full.close,
        volume=full.volume,
        sector=pd.Series(["tech", "tech", "energy"], index=["CCC", "AAA", "BBB"]),
        market=full.market,
        name="test",
    )
    assert shuffled.sector_codes().tolist() == [1, 0, 1]  # energy 0, tech 1
    assert shuffled.sector_codes().dtype == np.int32
