"""Rank and transform primitives, column-wise over an (N rows × K submissions) matrix.

They follow numerai-tools: a tie-kept rank is (average rank − ½) / count of non-NaN values,
so it lies strictly inside (0, 1) and Φ⁻¹ of it is finite; NaN stays NaN.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri
from scipy.stats import rankdata


def tie_kept_rank(values: np.ndarray) -> np.ndarray:
    """Per column: (average rank − 0.5) / number of non-NaN values; NaN where NaN."""
    x = np.asarray(values, dtype=np.float64)
    missing = np.isnan(x)
    ranks = rankdata(np.where(missing, np.inf, x), method="average", axis=0)
    counts = (~missing).sum(axis=0)
    out = (ranks - 0.5) / np.maximum(counts, 1)
    out[missing] = np.nan
    return np.asarray(out)


def gaussian(ranks: np.ndarray) -> np.ndarray:
    """Φ⁻¹ of values in (0, 1): the standard normal quantile."""
    return np.asarray(ndtri(ranks))


def power(values: np.ndarray, exponent: float = 1.5) -> np.ndarray:
    """Signed power: sign(x) · |x|^p."""
    return np.asarray(np.sign(values) * np.abs(values) ** exponent)


def gaussianised(values: np.ndarray) -> np.ndarray:
    """Φ⁻¹(tie-kept rank): how every submission enters CORR, MMC and the meta model."""
    return gaussian(tie_kept_rank(values))


def pearson(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Column-wise Pearson correlation of two (N,) or (N, K) arrays (broadcasting a vector).

    A column with zero variance gives NaN, without disturbing the other columns.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    if a.ndim == 1 and b.ndim == 2:
        a = a[:, None]
    if b.ndim == 1 and a.ndim == 2:
        b = b[:, None]
    numerator = (a * b).sum(axis=0)
    denominator = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(denominator > 0, numerator / denominator, np.nan))
