"""Weekly eras: each era is the last trading day of a calendar week (normally a Friday)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def era_day_positions(dates: pd.DatetimeIndex) -> np.ndarray:
    """Positions in `dates` of each week's last trading day.

    The final week counts only when it is complete, i.e. when the panel ends on a Friday
    or later in that week (a panel that stops on a Wednesday has no era for that week yet).
    """
    if len(dates) == 0:
        return np.empty(0, dtype=np.int64)
    weeks = dates.to_period("W-FRI")
    is_last = np.r_[weeks[1:] != weeks[:-1], True]
    positions = np.flatnonzero(is_last)
    if dates[-1].day_of_week < 4:  # the last week is still running
        positions = positions[:-1]
    return positions.astype(np.int64)


def era_label(number: int) -> str:
    """Era numbers are published as zero-padded strings: 1 → "0001"."""
    return f"{number:04d}"
