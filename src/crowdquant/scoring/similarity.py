"""How alike submissions are: to the meta model (CWMM) and to each other (originality).

* CWMM (correlation with the meta model, as in Numerai's docs): the Pearson correlation of
  pow1.5(Φ⁻¹(tie-kept rank(s))) with the meta model, per submission.
* Originality, today's form (Numerai's MCWNM / APCWNM): each submission's maximum and mean
  Pearson correlation with the *other* submissions of the round, on Gaussianised ranks. The
  K × K correlation matrix is built block by block from unit-scaled rows with matrix
  products over the upper triangle only (each pair computed once), never held whole.

`originality_against` measures every submission against a fixed reference set instead (the
round's on-time submissions), so a late submission's arrival changes no one else's figures.

A constant submission has no correlation: its CWMM, max and mean are NaN, and it is left out
of the other submissions' max and mean. With no other (non-constant) submission, max and mean
are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.scoring.align import DEFAULT_MAX_FILTERED_RATIO, aligned_ids
from crowdquant.scoring.corr import (
    as_frame,
    corr_predictions,
    pearson_rows,
    prediction_matrix,
    rows_at,
    target_vector,
    unit_rows,
)
from crowdquant.scoring.ranking import (
    FloatArray,
    column_rows,
    for_column_chunks,
    gaussianised_rows,
)


def cwmm_scores(
    predictions: npt.ArrayLike,
    meta_model: npt.ArrayLike,
    *,
    chunk_size: int = 256,
    workers: int | None = None,
) -> FloatArray:
    """CWMM of every column of an aligned (N, K) prediction matrix with the (N,) meta model."""
    matrix = prediction_matrix(predictions)
    meta = target_vector(meta_model, matrix.shape[0], "meta model")
    out = np.empty(matrix.shape[1], dtype=np.float64)

    def work(start: int, stop: int) -> None:
        out[start:stop] = pearson_rows(corr_predictions(column_rows(matrix, start, stop)), meta)

    for_column_chunks(matrix.shape[1], work, chunk_size, workers)
    return out


def cwmm(
    predictions: pd.DataFrame | pd.Series,
    meta_model: pd.Series,
    max_filtered_ratio: float = DEFAULT_MAX_FILTERED_RATIO,
) -> pd.Series:
    """CWMM per prediction column, after aligning ids as numerai_corr does (20 % rule)."""
    frame = as_frame(predictions)
    ids = aligned_ids({"meta_model": meta_model, "predictions": frame}, max_filtered_ratio)
    scores = cwmm_scores(rows_at(frame, ids), rows_at(meta_model, ids))
    return pd.Series(scores, index=frame.columns, dtype=np.float64)


@dataclass(frozen=True)
class Originality:
    """Per submission: max and mean Pearson correlation with the other submissions."""

    max_corr: FloatArray
    mean_corr: FloatArray


def _unit_gaussian_rows(
    matrix: FloatArray, workers: int | None
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Each column as a row of Gaussianised ranks, centred and scaled to unit length (K, N),
    and whether it varies (a constant column's row is zeros)."""
    n_columns = matrix.shape[1]
    unit = np.empty((n_columns, matrix.shape[0]), dtype=np.float64)
    valid = np.empty(n_columns, dtype=bool)

    def prepare(start: int, stop: int) -> None:
        unit[start:stop], valid[start:stop] = unit_rows(
            gaussianised_rows(column_rows(matrix, start, stop))
        )

    for_column_chunks(n_columns, prepare, workers=workers)
    return unit, valid


def originality_scores(
    predictions: npt.ArrayLike,
    *,
    block_size: int = 1024,
    workers: int | None = None,
) -> Originality:
    """Max and mean correlation of each (N, K) column with every other column.

    Columns are Gaussianised ranks, centred and scaled to unit length (K × N, one pass), so
    a block of the correlation matrix is one matrix product; only blocks on or above the
    diagonal are computed, each feeding the max and sum of both its rows and its columns.
    """
    matrix = prediction_matrix(predictions)
    n_columns = matrix.shape[1]
    unit, valid = _unit_gaussian_rows(matrix, workers)
    best = np.full(n_columns, -np.inf)
    total = np.zeros(n_columns)
    # invalid (constant) rows of `unit` are zeros: they add 0 to every sum, and are masked
    # out of the max below
    blocks = range(0, n_columns, block_size)
    for i in blocks:
        rows = slice(i, min(i + block_size, n_columns))
        for j in blocks:
            if j < i:
                continue
            cols = slice(j, min(j + block_size, n_columns))
            block = unit[rows] @ unit[cols].T
            if i == j:
                np.fill_diagonal(block, 0.0)
                total[rows] += block.sum(axis=1)
            else:
                total[rows] += block.sum(axis=1)
                total[cols] += block.sum(axis=0)
            block[~valid[rows], :] = -np.inf
            block[:, ~valid[cols]] = -np.inf
            if i == j:
                np.fill_diagonal(block, -np.inf)
            np.maximum(best[rows], block.max(axis=1, initial=-np.inf), out=best[rows])
            if i != j:
                np.maximum(best[cols], block.max(axis=0, initial=-np.inf), out=best[cols])
    others = valid.sum() - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / others
    best[~valid | (others < 1)] = np.nan
    mean[~valid | (others < 1)] = np.nan
    return Originality(max_corr=best, mean_corr=np.asarray(mean))


def originality_against(
    predictions: npt.ArrayLike,
    references: npt.ArrayLike,
    *,
    block_size: int = 1024,
    workers: int | None = None,
) -> Originality:
    """Max and mean correlation of each (N, K) column with the reference columns but itself.

    `references` are column positions (a subset of 0..K−1): column k is compared with every
    reference j ≠ k. Each column's figures depend only on it and the references.
    """
    matrix = prediction_matrix(predictions)
    n_columns = matrix.shape[1]
    refs = np.asarray(references, dtype=np.intp).reshape(-1)
    unit, valid = _unit_gaussian_rows(matrix, workers)
    refs = refs[valid[refs]]
    best = np.full(n_columns, np.nan)
    mean = np.full(n_columns, np.nan)
    for start in range(0, n_columns, block_size):
        rows = np.arange(start, min(start + block_size, n_columns))
        block = unit[rows] @ unit[refs].T
        others = rows[:, None] != refs[None, :]
        counts = others.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean[rows] = np.where(others, block, 0.0).sum(axis=1) / counts
        best[rows] = np.where(others, block, -np.inf).max(axis=1, initial=-np.inf)
        empty = (counts == 0) | ~valid[rows]
        best[rows[empty]] = np.nan
        mean[rows[empty]] = np.nan
    return Originality(max_corr=best, mean_corr=mean)


def originality(predictions: pd.DataFrame, block_size: int = 1024) -> pd.DataFrame:
    """Originality of a frame of submissions (no NaN): columns max_corr and mean_corr."""
    result = originality_scores(predictions.to_numpy(dtype=np.float64), block_size=block_size)
    return pd.DataFrame(
        {"max_corr": result.max_corr, "mean_corr": result.mean_corr}, index=predictions.columns
    )


@dataclass(frozen=True)
class NearDuplicates:
    """A round's near-duplicate submissions, by column."""

    dropped: dict[int, int]
    """A column that counts for nothing → the column of the same owner kept in its place."""
    flagged: list[tuple[int, int, float]]
    """Pairs of columns of different owners above the threshold, with their Spearman."""


def spearman_pairs(
    predictions: npt.ArrayLike, threshold: float, *, block_size: int = 1024
) -> list[tuple[int, int, float]]:
    """Every pair of (N, K) columns (i < j) whose Spearman correlation is above
    `threshold` (so a threshold of 1 finds none). A row a column lacks takes its mean rank;
    a constant column pairs with nothing."""
    matrix = np.asarray(predictions, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"predictions must be an (N, K) matrix, got shape {matrix.shape}")
    ranks = pd.DataFrame(matrix).rank(method="average")
    ranks = ranks.fillna(ranks.mean()).fillna(0.0)
    unit, valid = unit_rows(ranks.to_numpy(np.float64).T.copy())
    n_columns = unit.shape[0]
    pairs = []
    for i in range(0, n_columns, block_size):
        rows = slice(i, min(i + block_size, n_columns))
        for j in range(i, n_columns, block_size):
            cols = slice(j, min(j + block_size, n_columns))
            block = np.minimum(unit[rows] @ unit[cols].T, 1.0)  # no rounding past 1
            for a, b in zip(*np.nonzero(block > threshold), strict=True):
                left, right = i + int(a), j + int(b)
                if left < right and valid[left] and valid[right]:
                    pairs.append((left, right, float(block[a, b])))
    return sorted(pairs)


def near_duplicates(
    pairs: Sequence[tuple[int, int, float]],
    owners: Sequence[object],
    preference: Sequence[float],
) -> NearDuplicates:
    """Group the columns linked by `pairs` within one owner (chains included); in each
    group the column of highest `preference` (the first on a tie) is kept and the others
    dropped. Pairs across owners are only flagged."""
    parent = list(range(len(owners)))

    def root(k: int) -> int:
        while parent[k] != k:
            parent[k] = parent[parent[k]]
            k = parent[k]
        return k

    flagged = []
    for left, right, rho in pairs:
        if owners[left] == owners[right]:
            parent[root(right)] = root(left)
        else:
            flagged.append((left, right, rho))
    groups: dict[int, list[int]] = {}
    for k in range(len(owners)):
        groups.setdefault(root(k), []).append(k)
    dropped = {}
    for members in groups.values():
        kept = min(members, key=lambda k: (-preference[k], k))
        dropped.update({k: kept for k in members if k != kept})
    return NearDuplicates(dropped=dropped, flagged=flagged)
