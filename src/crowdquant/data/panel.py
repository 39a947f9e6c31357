"""The raw market panel every source produces and every later step reads.

A panel is daily and wide: one row per trading day, one column per ticker. It is the
operator's private input; nothing in it is ever published as is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

UNKNOWN_SECTOR = "unknown"


class PanelError(ValueError):
    """An input panel is malformed; the message names what is wrong."""


@dataclass(frozen=True)
class Panel:
    """Daily prices (and optionally volumes) of a universe of stocks.

    close:  trading days × tickers, float64, NaN where a ticker has no price that day.
    volume: same shape as close, or None when the source has no volumes.
    sector: ticker → sector label (UNKNOWN_SECTOR when the source gives none).
    market: the market index level per trading day (same index as close).
    """

    close: pd.DataFrame
    volume: pd.DataFrame | None
    sector: pd.Series
    market: pd.Series
    name: str

    def __post_init__(self) -> None:
        idx = self.close.index
        if not isinstance(idx, pd.DatetimeIndex) or not idx.is_monotonic_increasing:
            raise PanelError("panel dates must be a sorted DatetimeIndex")
        if not idx.is_unique:
            raise PanelError("panel dates must be unique")
        if self.volume is not None and (
            not self.volume.index.equals(idx) or not self.volume.columns.equals(self.close.columns)
        ):
            raise PanelError("volume must have the same dates and tickers as close")
        if not self.market.index.equals(idx):
            raise PanelError("market must have the same dates as close")
        missing = self.close.columns.difference(self.sector.index)  # sorted; a hash join
        if len(missing):
            raise PanelError(f"sector missing for tickers: {list(missing[:5])}")

    @property
    def tickers(self) -> list[str]:
        return [str(t) for t in self.close.columns]

    @property
    def dates(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.close.index)

    def sector_codes(self) -> np.ndarray:
        """Integer sector code per ticker, in column order (codes follow sorted labels)."""
        labels = self.sector.reindex(self.close.columns).astype(str).to_numpy(dtype=object)
        _, codes = np.unique(labels, return_inverse=True)  # sorted labels, as pd.Categorical's
        return codes.astype(np.int32)

    def until(self, last: pd.Timestamp) -> Panel:
        """The panel as it was known at the close of `last` (no later rows)."""
        return self._rows(slice(0, int(self.dates.searchsorted(last, side="right"))))

    def tail(self, days: int) -> Panel:
        """The last `days` trading days."""
        return self._rows(slice(max(len(self.dates) - days, 0), None))

    def _rows(self, rows: slice) -> Panel:
        """The panel on a run of its rows: nothing is copied until it changes (copy on write),
        so cutting a long history costs nothing like its size."""
        return Panel(
            close=self.close.iloc[rows],
            volume=None if self.volume is None else self.volume.iloc[rows],
            sector=self.sector,
            market=self.market.iloc[rows],
            name=self.name,
        )


def equal_weight_market(close: pd.DataFrame) -> pd.Series:
    """A market index built from the panel itself, for sources that bring none."""
    daily = close.pct_change(fill_method=None).mean(axis=1, skipna=True).fillna(0.0)
    return (1.0 + daily).cumprod().rename("market")
