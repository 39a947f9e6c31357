"""MMC / BMC (numerai-tools' `correlation_contribution`), batch over (N × K) predictions.

Both the predictions and the meta model are tie-kept ranked and Gaussianised (no power 1.5),
the meta-model direction is removed from each prediction column (p⊥ = p − m·(pᵀm / mᵀm)), and
the score is the covariance of p⊥ with the target: tᵀp⊥ / N, where the target is first scaled
by 4 if every value lies in [0, 1] and then centred over the rows scored. With `top_bottom=n`
each column keeps the rows of its n lowest and n highest p⊥ values: Σ t·p⊥ over them / 2n
(the target still centred over all rows). BMC is the same with the benchmark blend as the
meta model.

A constant column scores 0 (its Gaussianised rank is all zeros), as in the reference. A
constant meta model is refused (the reference divides by zero).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.scoring.align import DEFAULT_MAX_FILTERED_RATIO, aligned_ids
from crowdquant.scoring.corr import (
    as_frame,
    checked_top_bottom,
    prediction_matrix,
    rows_at,
    target_vector,
    top_bottom_indices,
)
from crowdquant.scoring.ranking import (
    FloatArray,
    column_rows,
    for_column_chunks,
    gaussianised,
    gaussianised_rows,
)


def contribution_targets(targets: npt.ArrayLike) -> FloatArray:
    """The target side of MMC: ×4 when every value is in [0, 1], then centred."""
    t = np.asarray(targets, dtype=np.float64)
    if ((t >= 0) & (t <= 1)).all():
        t = t * 4
    return np.asarray(t - t.mean())


def gaussianised_meta_model(meta_model: npt.ArrayLike, name: str = "meta model") -> FloatArray:
    """Φ⁻¹(tie-kept rank) of an aligned (N,) meta model; refuses a constant one."""
    m = gaussianised(np.asarray(meta_model, dtype=np.float64))
    if not np.any(m != 0):
        raise ValueError(f"the {name} is constant: contributions are undefined")
    return m


def orthogonalised_rows(rows: FloatArray, meta: FloatArray) -> FloatArray:
    """Each (K, N) row minus its projection on the (N,) meta-model vector."""
    betas = (rows @ meta) / (meta @ meta)
    return np.asarray(rows - betas[:, None] * meta[None, :])


def mmc_scores(
    predictions: npt.ArrayLike,
    meta_model: npt.ArrayLike,
    targets: npt.ArrayLike,
    *,
    top_bottom: int | None = None,
    chunk_size: int = 256,
    workers: int | None = None,
) -> FloatArray:
    """MMC of every column of an aligned (N, K) prediction matrix against (N,) targets.

    `meta_model` is the raw (N,) meta model (or benchmark blend for BMC) on the same rows; it
    is ranked and Gaussianised here. Columns run in chunks on up to `workers` threads.
    """
    matrix = prediction_matrix(predictions)
    n_rows, n_columns = matrix.shape
    meta = gaussianised_meta_model(target_vector(meta_model, n_rows, "meta model"))
    t = contribution_targets(target_vector(targets, n_rows))
    keep = checked_top_bottom(top_bottom, n_rows)
    out = np.empty(n_columns, dtype=np.float64)

    def work(start: int, stop: int) -> None:
        perpendicular = orthogonalised_rows(
            gaussianised_rows(column_rows(matrix, start, stop)), meta
        )
        if keep:
            rows = top_bottom_indices(perpendicular, keep)
            kept = np.take_along_axis(perpendicular, rows, axis=1)
            out[start:stop] = np.einsum("ij,ij->i", kept, t[rows]) / (2 * keep)
        else:
            out[start:stop] = (perpendicular @ t) / n_rows

    for_column_chunks(n_columns, work, chunk_size, workers)
    return out


def correlation_contribution(
    predictions: pd.DataFrame | pd.Series,
    meta_model: pd.Series,
    targets: pd.Series,
    top_bottom: int | None = None,
    max_filtered_ratio: float = DEFAULT_MAX_FILTERED_RATIO,
) -> pd.Series:
    """MMC (or BMC, given the benchmark blend) per prediction column, as numerai-tools does.

    Alignment follows the reference's three pairwise steps, each with the 20 % rule: the meta
    model against the predictions (a NaN in any column drops the row), then the targets
    against the predictions left by that step, then the targets against the meta model (which
    can no longer fail). Duplicate ids raise AlignmentError naming the input.
    """
    frame = as_frame(predictions)
    first = aligned_ids({"meta_model": meta_model, "predictions": frame}, max_filtered_ratio)
    predictions_left = frame.iloc[frame.index.get_indexer(first)]
    ids = aligned_ids({"targets": targets, "predictions": predictions_left}, max_filtered_ratio)
    scores = mmc_scores(
        rows_at(frame, ids),
        rows_at(meta_model, ids),
        rows_at(targets, ids),
        top_bottom=top_bottom,
    )
    return pd.Series(scores, index=frame.columns, dtype=np.float64)
