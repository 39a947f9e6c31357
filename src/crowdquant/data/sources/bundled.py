"""The bundled panel: 20 S&P 500 stocks shipped inside skfolio (no network needed).

Daily adjusted closes from 1990-01-02 to 2022-12-28, with the S&P 500 index as market.
The data are read from files inside the skfolio wheel, never from skfolio's download cache.
"""

from __future__ import annotations

import pandas as pd

from crowdquant.data.panel import UNKNOWN_SECTOR, Panel, PanelError

BUNDLED_NAME = "bundled"

#: GICS sector of each bundled ticker.
SP500_SECTORS: dict[str, str] = {
    "AAPL": "Information Technology",
    "AMD": "Information Technology",
    "MSFT": "Information Technology",
    "BAC": "Financials",
    "JPM": "Financials",
    "BBY": "Consumer Discretionary",
    "HD": "Consumer Discretionary",
    "CVX": "Energy",
    "XOM": "Energy",
    "RRC": "Energy",
    "GE": "Industrials",
    "JNJ": "Health Care",
    "LLY": "Health Care",
    "MRK": "Health Care",
    "PFE": "Health Care",
    "UNH": "Health Care",
    "KO": "Consumer Staples",
    "PEP": "Consumer Staples",
    "PG": "Consumer Staples",
    "WMT": "Consumer Staples",
}


def load_bundled_panel() -> Panel:
    """The bundled 20-stock S&P 500 panel (offline; data ship with skfolio)."""
    # Imported here: importing skfolio takes seconds and most commands never need it.
    from skfolio.datasets import load_sp500_dataset, load_sp500_index

    close = _daily_frame(load_sp500_dataset())
    market = _market_series(load_sp500_index(), pd.DatetimeIndex(close.index))
    sector = pd.Series(
        [SP500_SECTORS.get(t, UNKNOWN_SECTOR) for t in close.columns],
        index=close.columns.copy(),
        name="sector",
    )
    return Panel(close=close, volume=None, sector=sector, market=market, name=BUNDLED_NAME)


def _date_index(index: pd.Index) -> pd.DatetimeIndex:
    """Tz-naive, normalised, datetime64[ns] dates named "date"."""
    dates = pd.DatetimeIndex(index)
    if dates.tz is not None:
        dates = dates.tz_localize(None)
    return pd.DatetimeIndex(dates.normalize().astype("datetime64[ns]"), name="date")


def _daily_frame(raw: pd.DataFrame) -> pd.DataFrame:
    """Skfolio's price frame as a sorted float64 dates × tickers frame."""
    close = raw.astype("float64")
    close.index = _date_index(raw.index)
    close.columns = pd.Index([str(c) for c in raw.columns], name="ticker")
    return close.sort_index()


def _market_series(raw: pd.DataFrame, dates: pd.DatetimeIndex) -> pd.Series:
    """The one-column index frame as a float64 Series on `dates`."""
    level = raw.iloc[:, 0].astype("float64")
    level.index = _date_index(raw.index)
    market = level.reindex(dates).rename("market")
    if market.isna().any():
        missing = dates[market.isna().to_numpy()]
        raise PanelError(
            f"bundled market index has no level on {len(missing)} panel dates, "
            f"first: {[d.date().isoformat() for d in missing[:5]]}"
        )
    return market
