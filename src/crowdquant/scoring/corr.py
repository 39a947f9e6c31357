"""CORR (numerai-tools' `numerai_corr`), batch over an (N rows × K submissions) matrix.

Per submission column: tie-kept rank → Φ⁻¹ → signed power 1.5, then the Pearson correlation
with the centred target (itself signed-powered by 1.5 unless `target_pow15=False`, e.g. for
raw returns). With `top_bottom=n` only each column's n lowest and n highest predictions
(stable order, so ties go by row order, i.e. by sorted id) and their targets are correlated.

The numpy functions take inputs that are already aligned (same rows, no NaN); `numerai_corr`
is the pandas wrapper with the reference's alignment. Deliberate departures from the
reference: duplicate ids raise AlignmentError naming the input; a constant column scores NaN
(as in the reference) without touching the other columns; a Series of predictions is taken
as a one-column frame; `2·top_bottom` larger than the number of rows is refused.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.scoring.align import DEFAULT_MAX_FILTERED_RATIO, aligned_ids
from crowdquant.scoring.ranking import (
    FloatArray,
    column_rows,
    for_column_chunks,
    gaussianised_rows,
    power,
)

CORR_EXPONENT = 1.5
IndexArray = npt.NDArray[np.intp]


def prediction_matrix(predictions: npt.ArrayLike, name: str = "predictions") -> FloatArray:
    """An (N, K) float64 matrix without NaN (a vector is one column)."""
    matrix = np.asarray(predictions, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"{name} must be an (N, K) matrix, got shape {matrix.shape}")
    if np.isnan(matrix).any():
        raise ValueError(f"{name} contain NaN: align them first (rows with a NaN are dropped)")
    return matrix


def target_vector(targets: npt.ArrayLike, n_rows: int, name: str = "targets") -> FloatArray:
    """An (N,) float64 vector without NaN, of the expected length."""
    vector = np.asarray(targets, dtype=np.float64)
    if vector.shape != (n_rows,):
        raise ValueError(f"{name} must have shape ({n_rows},), got {vector.shape}")
    if np.isnan(vector).any():
        raise ValueError(f"{name} contain NaN: align them first (rows with a NaN are dropped)")
    return vector


def checked_top_bottom(top_bottom: int | None, n_rows: int) -> int:
    """The number of top and of bottom rows to keep; 0 for "all rows" (None or ≤ 0)."""
    if top_bottom is None or top_bottom <= 0:
        return 0
    if 2 * top_bottom > n_rows:
        raise ValueError(f"top_bottom={top_bottom} needs at least {2 * top_bottom} rows")
    return int(top_bottom)


def corr_targets(
    targets: npt.ArrayLike, target_pow15: bool = True, target_mean: float | None = None
) -> FloatArray:
    """The target side of CORR: centred, then signed-powered by 1.5 if `target_pow15`.

    It is centred by `target_mean` when given (the reference centres over all target rows it
    was passed, before alignment), else by the mean of the values passed in.
    """
    t = np.asarray(targets, dtype=np.float64)
    centre = float(np.mean(t)) if target_mean is None else target_mean
    t = t - centre
    return power(t, CORR_EXPONENT) if target_pow15 else t


def corr_predictions(rows: npt.ArrayLike) -> FloatArray:
    """The prediction side of CORR for (K, N) submission rows: pow1.5(Φ⁻¹(tie-kept rank))."""
    return gaussianised_rows(rows, CORR_EXPONENT)


def unit_rows(rows: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Each row centred and scaled to unit length, and which rows were not constant.

    A constant row comes back as zeros and flagged False, so a Pearson correlation built on
    these rows can be set to NaN for it without disturbing the others.
    """
    centred = rows - rows.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    valid = norms > 0
    centred *= (np.divide(1.0, norms, out=np.zeros_like(norms), where=valid))[:, None]
    return centred, valid


def pearson_rows(rows: FloatArray, other: FloatArray) -> FloatArray:
    """Pearson correlation of each row of a (K, M) array with an (M,) vector or (K, M) rows.

    A zero-variance side gives NaN for that row only.
    """
    unit, valid = unit_rows(rows)
    if other.ndim == 1:
        centred = other - other.mean()
        norm = float(np.sqrt(centred @ centred))
        numerators = unit @ centred
        norms = np.full(len(unit), norm)
    else:
        centred = other - other.mean(axis=1, keepdims=True)
        norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
        numerators = np.einsum("ij,ij->i", unit, centred)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = numerators / norms
    out[~valid | (norms == 0)] = np.nan
    return np.asarray(out)


def top_bottom_indices(rows: FloatArray, top_bottom: int) -> IndexArray:
    """Per row, the positions of its `top_bottom` lowest then `top_bottom` highest values.

    Stable order, so among equal values the earlier position (the smaller id) counts as lower,
    as in numerai-tools' `filter_sort_top_bottom`.
    """
    order = np.argsort(rows, axis=1, kind="stable")
    return np.concatenate([order[:, :top_bottom], order[:, -top_bottom:]], axis=1)


def corr_scores(
    predictions: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    top_bottom: int | None = None,
    target_pow15: bool = True,
    target_mean: float | None = None,
    chunk_size: int = 256,
    workers: int | None = None,
) -> FloatArray:
    """CORR of every column of an aligned (N, K) prediction matrix against (N,) targets.

    Targets are centred by `target_mean` if given, else by their own mean. A constant column
    scores NaN. Columns are processed in chunks of `chunk_size` on up to `workers` threads.
    """
    matrix = prediction_matrix(predictions)
    n_rows, n_columns = matrix.shape
    t = corr_targets(target_vector(targets, n_rows), target_pow15, target_mean)
    keep = checked_top_bottom(top_bottom, n_rows)
    out = np.empty(n_columns, dtype=np.float64)

    def work(start: int, stop: int) -> None:
        transformed = corr_predictions(column_rows(matrix, start, stop))
        if keep:
            rows = top_bottom_indices(transformed, keep)
            out[start:stop] = pearson_rows(np.take_along_axis(transformed, rows, axis=1), t[rows])
        else:
            out[start:stop] = pearson_rows(transformed, t)

    for_column_chunks(n_columns, work, chunk_size, workers)
    return out


def as_frame(predictions: pd.DataFrame | pd.Series) -> pd.DataFrame:
    """Predictions as a frame (a Series becomes one column named after it)."""
    if isinstance(predictions, pd.Series):
        return predictions.to_frame(predictions.name if predictions.name is not None else 0)
    return predictions


def rows_at(data: pd.DataFrame | pd.Series, ids: pd.Index) -> FloatArray:
    """The values of `data` at the given (present, unique) ids, as float64."""
    positions = data.index.get_indexer(ids)
    values = data.to_numpy(dtype=np.float64)
    return np.asarray(values[positions])


def numerai_corr(
    predictions: pd.DataFrame | pd.Series,
    targets: pd.Series,
    max_filtered_ratio: float = DEFAULT_MAX_FILTERED_RATIO,
    top_bottom: int | None = None,
    target_pow15: bool = True,
) -> pd.Series:
    """CORR per prediction column, as numerai-tools' `numerai_corr` computes it.

    The target is centred over all its non-NaN rows first (extra ids included), then the ids
    are aligned: rows with a NaN in any prediction column or in the target are dropped, ids
    are intersected and sorted, and each input may lose at most `max_filtered_ratio` of its
    rows (AlignmentError otherwise, also for duplicate ids).
    """
    frame = as_frame(predictions)
    target_mean = float(targets.mean())
    ids = aligned_ids({"targets": targets, "predictions": frame}, max_filtered_ratio)
    scores = corr_scores(
        rows_at(frame, ids),
        rows_at(targets, ids),
        top_bottom=top_bottom,
        target_pow15=target_pow15,
        target_mean=target_mean,
    )
    return pd.Series(scores, index=frame.columns, dtype=np.float64)
