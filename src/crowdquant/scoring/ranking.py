"""Rank and transform primitives, column-wise over an (N rows × K submissions) matrix.

They follow numerai-tools: a tie-kept rank is (average rank − ½) / count of non-NaN values,
so it lies strictly inside (0, 1) and Φ⁻¹ of it is finite; NaN stays NaN.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import numpy.typing as npt
from scipy.special import ndtri
from scipy.stats import rankdata
from threadpoolctl import threadpool_limits


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


IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


def doubled_average_ranks(rows: npt.ArrayLike) -> tuple[IntArray, npt.NDArray[np.int64]]:
    """Per row of a (K, N) array: twice the 1-based average rank of each value, and the count.

    Twice the average rank is an integer (a tie group spanning sorted positions s..e, 0-based,
    has average rank (s + e + 2) / 2), so the tie-kept rank is (h / 2 − ½) / count exactly as
    `tie_kept_rank` computes it. NaN positions get 0 and are left out of the count.
    """
    x = np.asarray(rows, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"expected a 2-d array of rows, got shape {x.shape}")
    k, n = x.shape
    order = np.argsort(x, axis=1)  # NaN sorts last; the order within ties is irrelevant
    ordered = np.take_along_axis(x, order, axis=1)
    positions = np.arange(n, dtype=np.int32)
    starts_group = np.empty((k, n), dtype=bool)
    starts_group[:, :1] = True
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts_group[:, 1:])
    if starts_group.all():  # no ties: h = 2·(position + 1)
        doubled = np.broadcast_to(2 * positions + 2, (k, n))
    else:
        start = np.where(starts_group, positions, 0)
        np.maximum.accumulate(start, axis=1, out=start)
        ends_group = np.empty_like(starts_group)
        ends_group[:, -1:] = True
        ends_group[:, :-1] = starts_group[:, 1:]
        end = np.where(ends_group, positions, n - 1)[:, ::-1]
        end = np.minimum.accumulate(end, axis=1)[:, ::-1]
        doubled = start + end + 2
    out = np.empty((k, n), dtype=np.int32)
    np.put_along_axis(out, order, doubled, axis=1)
    missing = np.isnan(x)
    out[missing] = 0
    counts = n - missing.sum(axis=1)
    return out, counts.astype(np.int64)


def gaussian_table(n: int, exponent: float | None = None) -> FloatArray:
    """Φ⁻¹ of every tie-kept rank n values can take, indexed by twice the average rank.

    Entry h (2 ≤ h ≤ 2n) is Φ⁻¹((h/2 − ½)/n), signed-powered when `exponent` is given;
    entries 0 and 1 are NaN.
    """
    doubled = np.arange(2 * n + 1, dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        table = gaussian((doubled / 2 - 0.5) / max(n, 1))
    table[:2] = np.nan
    return power(table, exponent) if exponent is not None else table


def gaussianised_rows(rows: npt.ArrayLike, exponent: float | None = None) -> FloatArray:
    """Φ⁻¹(tie-kept rank) of each row of a (K, N) array, signed-powered if `exponent` is given.

    NaN stays NaN and each row is ranked over its own non-NaN values.
    """
    doubled, counts = doubled_average_ranks(rows)
    n = doubled.shape[1]
    if doubled.size and (counts == n).all():
        return np.asarray(gaussian_table(n, exponent)[doubled])
    with np.errstate(invalid="ignore", divide="ignore"):
        ranks = (doubled / 2 - 0.5) / np.maximum(counts, 1)[:, None]
    ranks[doubled == 0] = np.nan
    out = gaussian(ranks)
    return power(out, exponent) if exponent is not None else out


def default_workers() -> int:
    """The CPU cores this process may use (at least 1)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def for_column_chunks(
    n_columns: int,
    work: Callable[[int, int], None],
    chunk_size: int = 256,
    workers: int | None = None,
) -> None:
    """Call `work(start, stop)` over consecutive column ranges, on up to `workers` threads.

    With more than one thread, BLAS is limited to one thread per call while they run.
    """
    if chunk_size < 1:
        raise ValueError("chunk_size must be at least 1")
    bounds = [(s, min(s + chunk_size, n_columns)) for s in range(0, n_columns, chunk_size)]
    threads = min(workers or default_workers(), len(bounds))
    if threads <= 1:
        for start, stop in bounds:
            work(start, stop)
        return
    # one BLAS thread per worker: nested BLAS threads oversubscribe the cores (the limit is
    # process-wide while the chunks run, and restored after)
    with threadpool_limits(limits=1, user_api="blas"), ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(work, start, stop) for start, stop in bounds]:
            future.result()


def column_rows(matrix: npt.NDArray[np.float64], start: int, stop: int) -> FloatArray:
    """Columns start:stop of an (N, K) matrix as contiguous (stop − start, N) rows."""
    return np.ascontiguousarray(matrix[:, start:stop].T, dtype=np.float64)
