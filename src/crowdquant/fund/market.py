"""The operator's view of the market behind a dataset version: prices, betas, sectors, and
the id map that turns anonymised rows back into (era date, ticker).

Nothing here is ever published: it reads the operator-only half of a version and the
private price panel the version was built from.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.data.features import market_beta
from crowdquant.data.panel import Panel
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import load_panel, stored_source

FloatArray = npt.NDArray[np.float64]


class Market:
    """Prices, betas and sectors of a panel, as the fund sees them on each trading day."""

    def __init__(self, panel: Panel, beta_window: int = 252) -> None:
        self.panel = panel
        self.beta_window = beta_window
        raw = panel.close.to_numpy(np.float64)
        self._priced = np.isfinite(raw)
        self._close = panel.close.ffill().to_numpy(np.float64)  # a stale price, never a gap
        self._betas: dict[pd.Timestamp, pd.Series] = {}

    @property
    def tickers(self) -> list[str]:
        return self.panel.tickers

    @property
    def sectors(self) -> pd.Series:
        return self.panel.sector.reindex(self.panel.close.columns)

    @property
    def n_days(self) -> int:
        return len(self.panel.dates)

    def day(self, date: pd.Timestamp) -> int:
        """The panel row of a trading day; KeyError when the panel has no such day."""
        found = self.panel.dates.get_indexer(pd.DatetimeIndex([date]))[0]
        if found < 0:
            raise KeyError(f"{pd.Timestamp(date).date()} is not a trading day of the panel")
        return int(found)

    def betas(self, dates: pd.DatetimeIndex) -> pd.DataFrame:
        """Market beta of every ticker at the close of each date (NaN without a full window)."""
        wanted = [pd.Timestamp(d) for d in dates if pd.Timestamp(d) not in self._betas]
        if wanted:
            days = np.array([self.day(d) for d in wanted], dtype=np.int64)
            values = market_beta(self.panel, days, self.beta_window)
            for date, row in zip(wanted, values, strict=True):
                self._betas[date] = pd.Series(row, index=self.panel.close.columns)
        return pd.DataFrame([self._betas[pd.Timestamp(d)] for d in dates], index=dates)

    def priced(self, day: int) -> npt.NDArray[np.bool_]:
        """Which tickers have a price on that day (the others cannot be traded)."""
        return np.asarray(self._priced[day])

    def returns(self, start: int, end: int) -> pd.Series:
        """Simple return of each ticker from the close of day `start` to that of `end`
        (a ticker whose prices stop earns its last price; NaN before its first)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            values = self._close[end] / self._close[start] - 1.0
        return pd.Series(values, index=self.panel.close.columns, name="return")


def version_panel(version: DatasetVersion) -> Panel:
    """The price panel a version was built from, cut where the build cut it."""
    info = version.build_info()
    panel = load_panel(stored_source(info["source"]), version.config().min_stocks_per_era)
    if info.get("until"):
        panel = panel.until(pd.Timestamp(info["until"]))
    return panel


def signals_from_predictions(predictions: pd.Series, id_map: pd.DataFrame) -> pd.DataFrame:
    """Predictions indexed by id → a frame of era dates × tickers (NaN: no prediction).

    `id_map` has columns id, ticker and date (the version's operator-only id map); an id the
    map does not know is refused.
    """
    rows = id_map.set_index("id").reindex(predictions.index.astype(str))
    unknown = rows["ticker"].isna()
    if unknown.any():
        raise ValueError(
            f"{int(unknown.sum())} prediction id(s) are not in the id map, "
            f"e.g. {predictions.index[unknown.to_numpy()][0]!r}"
        )
    long = pd.DataFrame(
        {
            "date": pd.to_datetime(rows["date"].to_numpy()),
            "ticker": rows["ticker"].astype(str).to_numpy(),
            "signal": predictions.to_numpy(np.float64),
        }
    )
    wide = long.pivot(index="date", columns="ticker", values="signal")
    wide.index.name, wide.columns.name = "date", "ticker"
    return wide.sort_index()
