"""Summaries of per-era scores: mean, std, Sharpe, max drawdown, share of positive eras.

Definitions (Numerai's example scripts and numerai-tools' `sharpe_ratio`):

* std is the population std (ddof 0); Sharpe = mean / std (NaN when std is 0);
* max drawdown = max over eras of (running max of the cumulative score − cumulative score),
  the running max starting at the first era's cumulative score (so it is ≥ 0);
* positive share = share of eras with a score > 0.

NaN eras (a submission absent from an era) are skipped: they count in none of the statistics
and leave the cumulative score unchanged. A submission with no scored era gets NaN throughout.
`summary_stats` works column-wise on an (eras × submissions) array; `summarise` gives a frozen
`ScoreSummary` for one series and `summarise_many` a frame with a row per submission.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.scoring.ranking import FloatArray

STATISTICS = ("mean", "std", "sharpe", "max_drawdown", "positive_share", "n_eras")


def summary_stats(scores: npt.ArrayLike) -> dict[str, FloatArray]:
    """The statistics of an (E,) or (E, K) array of per-era scores, each of shape () or (K,)."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim not in (1, 2):
        raise ValueError(f"scores must be (eras,) or (eras, submissions), got {values.shape}")
    if values.shape[0] == 0:
        stats = {name: np.full(values.shape[1:], np.nan) for name in STATISTICS}
        stats["n_eras"] = np.zeros(values.shape[1:])
        return stats
    present = ~np.isnan(values)
    counts = present.sum(axis=0)
    filled = np.where(present, values, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=0) / counts
        deviations = np.where(present, values - mean, 0.0)
        std = np.sqrt((deviations**2).sum(axis=0) / counts)
        sharpe = np.where(std > 0, mean / std, np.nan)
        positive_share = (filled > 0).sum(axis=0) / counts
    cumulative = np.cumsum(filled, axis=0)
    # eras before a submission's first score must not set its running max
    first = np.argmax(present, axis=0)
    started = np.arange(len(values)).reshape((-1,) + (1,) * (values.ndim - 1)) >= first
    running = np.where(started, cumulative, -np.inf)
    drawdown = np.where(started, np.maximum.accumulate(running, axis=0) - cumulative, 0.0)
    max_drawdown = drawdown.max(axis=0, initial=0.0)
    none = counts == 0
    return {
        "mean": np.asarray(mean),
        "std": np.asarray(std),
        "sharpe": np.asarray(sharpe),
        "max_drawdown": np.asarray(np.where(none, np.nan, max_drawdown)),
        "positive_share": np.asarray(positive_share),
        "n_eras": np.asarray(counts, dtype=np.float64),
    }


@dataclass(frozen=True)
class ScoreSummary:
    """One submission's per-era scores and their summary."""

    mean: float
    std: float
    sharpe: float
    max_drawdown: float
    positive_share: float
    n_eras: int
    scores: pd.Series


def summarise(scores: pd.Series | npt.ArrayLike) -> ScoreSummary:
    """Summary of one series of per-era scores (index = era, in era order)."""
    series = scores if isinstance(scores, pd.Series) else pd.Series(np.asarray(scores))
    stats = summary_stats(series.to_numpy(dtype=np.float64))
    return ScoreSummary(
        mean=float(stats["mean"]),
        std=float(stats["std"]),
        sharpe=float(stats["sharpe"]),
        max_drawdown=float(stats["max_drawdown"]),
        positive_share=float(stats["positive_share"]),
        n_eras=int(stats["n_eras"]),
        scores=series,
    )


def summarise_many(scores: pd.DataFrame) -> pd.DataFrame:
    """Summary of each column of an (eras × submissions) frame: a row per submission."""
    stats = summary_stats(scores.to_numpy(dtype=np.float64))
    frame = pd.DataFrame(stats, index=scores.columns, columns=list(STATISTICS))
    return frame.astype({"n_eras": np.int64})
