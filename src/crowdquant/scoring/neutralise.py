"""Feature neutralisation, feature-neutral CORR (FNC) and feature exposure, batch-first.

numerai-tools' `neutralize` regresses every column on the neutralizers plus an intercept
(`lstsq`, rcond 1e-6) and subtracts `proportion` × the fit; FNC ranks and Gaussianises the
predictions, neutralises them to the features, rescales them to unit (population) std and
takes CORR (`numerai_corr`) of the result. Here the neutralizers are factored once by a
`Neutraliser` and reused for every batch of columns (a round's daily updates and submission
chunks share the features), and the columns are processed in chunks to bound memory.

How the projection is computed. The fast path solves the normal equations of the centred,
unit-scaled features (a Cholesky factor of their correlation matrix). The Gram matrix is
formed in float64, or in float32 for integer features (Numerai-style int8 bins) with
N·max|value|² < 2^24: every product and partial sum is then an integer below 2^24, so the
float32 Gram (twice as fast) is exact.
It is used only when the correlation matrix is well conditioned (estimated 1-norm condition
≤ 1e6, so the result agrees with `lstsq` to about 1e-10) and when a bound on the singular
values of [features, 1] shows the reference's rcond cut-off cannot drop a direction.
Otherwise (collinear or duplicated features, more features than rows, badly scaled columns)
an SVD of [features, 1] applies the reference's rule exactly: singular values ≤ rcond × the
largest are dropped. Constant features lie in the intercept's span and are ignored.

Deliberate departures from numerai-tools (shared with the other scorers): a constant
prediction column is neutralised to NaN (as the reference) but scores FNC 0 (as MMC does)
without touching the other columns, where the reference fails the whole batch; a column that
the features explain entirely (its residual is rounding noise, ≤ 1e-10 of its spread) is
treated the same way instead of scoring amplified noise; duplicate ids, unsorted or
mismatched indexes, NaN features and NaN predictions raise ValueError with a message.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

from crowdquant.scoring.align import AlignmentError, aligned_ids, check_unique_ids
from crowdquant.scoring.corr import (
    as_frame,
    checked_top_bottom,
    corr_scores,
    top_bottom_indices,
    unit_rows,
)
from crowdquant.scoring.ranking import (
    FloatArray,
    column_rows,
    default_workers,
    for_column_chunks,
    gaussianised_rows,
)

RCOND = 1e-6
"""numerai-tools' `lstsq` cut-off: singular values ≤ RCOND × the largest are dropped."""

MIN_FAST_RCOND = 1e-6
"""The least (estimated) reciprocal condition of the feature correlation matrix for which the
normal equations are trusted; below it the SVD path is taken."""

EXPLAINED_TOL = 1e-10
"""A residual at most this fraction of its column's spread counts as fully explained."""

DEFAULT_CHUNK = 256
"""Submission columns processed together (a 6 000-row chunk is 12 MB per intermediate)."""

_EXACT_FLOAT32 = 2.0**24
_SINGLE_THREAD_FACTOR = 256  # features from which the factorisation pins BLAS to one thread
IntArray = npt.NDArray[np.intp]
_T = TypeVar("_T")


@dataclass(frozen=True)
class _Basis:
    """Projection on span(1, features): the fast (normal equations) or the SVD form."""

    method: str
    rank: int
    features: npt.NDArray[np.number] | None = None  # (N, F') kept features (fast path)
    means: FloatArray | None = None  # (F',) their means (zeros when already centred)
    scales: FloatArray | None = None  # (F',) their centred norms / sqrt(N)
    cholesky: FloatArray | None = None  # upper factor of their correlation matrix
    orthonormal: FloatArray | None = None  # (N, r) basis of the kept span (SVD path)


class Neutraliser:
    """The neutralizers of one era, factored once; `apply` neutralises any batch of columns.

    `neutralizers` is an (N, F) array (a vector is one feature) without NaN or inf; integer
    dtypes (e.g. int8 feature bins) take the exact float32 Gram. The intercept is implied.
    """

    def __init__(
        self, neutralizers: npt.ArrayLike, *, rcond: float = RCOND, name: str = "neutralizers"
    ) -> None:
        a = np.asarray(neutralizers)
        if a.ndim == 1:
            a = a[:, None]
        if a.ndim != 2:
            raise ValueError(f"{name} must be an (N, F) matrix, got shape {a.shape}")
        if a.dtype.kind == "b":
            a = a.view(np.uint8)
        if a.dtype.kind not in "iuf":
            raise ValueError(f"{name} must be numeric, got dtype {a.dtype}")
        if a.shape[0] == 0:
            raise ValueError(f"{name} have no rows")
        self.n_rows, self.n_features = a.shape
        self.rcond = rcond
        self.name = name
        if a.dtype.kind not in "iu" or not self._fits_float32(a):
            a = np.asarray(a, dtype=np.float64)
            bad = ~np.isfinite(a)
            if bad.any():
                raise ValueError(
                    f"{name} contain {int(bad.sum())} NaN or infinite value(s): fill them "
                    "first (Numerai fills missing features with the per-era median)"
                )
        # One factorisation gains little from BLAS threads and, on shared cores, OpenBLAS's
        # threaded potrf/gemm were seen to take 10-50x longer; small F skips the (0.3 ms)
        # switch, as the per-era callers have already made BLAS single-threaded.
        with _blas_threads(1 if self.n_features >= _SINGLE_THREAD_FACTOR else None):
            basis = self._fast_integer(a) if a.dtype.kind in "iu" else self._fast_float(a)
            self._basis = basis if basis is not None else self._svd(a)

    @property
    def method(self) -> str:
        """'cholesky' (normal equations), 'svd' (the reference's rule) or 'intercept'."""
        return self._basis.method

    @property
    def rank(self) -> int:
        """Dimension of the span projected out, intercept included."""
        return self._basis.rank

    # -- factorisation -------------------------------------------------------------------

    def _fits_float32(self, a: npt.NDArray[np.integer]) -> bool:
        if a.size == 0:
            return True
        largest = max(abs(int(a.min())), abs(int(a.max())), 1)
        return bool(self.n_rows * largest * largest < _EXACT_FLOAT32)

    def _fast_integer(self, a: npt.NDArray[np.integer]) -> _Basis | None:
        """Exact Gram of small integers in float32, centred in int64 arithmetic."""
        n, f = a.shape
        augmented = np.empty((n, f + 1), dtype=np.float32)
        augmented[:, :f] = a
        augmented[:, f] = 1.0
        gram = (augmented.T @ augmented).astype(np.int64)  # exact: all values < 2^24
        sums = gram[:f, f]
        # n × the centred Gram, exactly (int64; below 2^53 given n·max² < 2^24)
        centred = n * gram[:f, :f] - np.outer(sums, sums)
        keep = np.flatnonzero(np.diagonal(centred) > 0)
        if len(keep) == 0:
            return _Basis("intercept", 1)
        centred = centred[np.ix_(keep, keep)].astype(np.float64)
        # kept compact (a copy: 1 byte a value for int8 bins); widened to float64 per use
        features = np.array(a if len(keep) == f else a[:, keep], order="C")
        return self._cholesky(features, sums[keep] / n, centred / n)

    def _fast_float(self, a: FloatArray) -> _Basis | None:
        """Gram of the explicitly centred features in float64."""
        keep = np.flatnonzero(a.max(axis=0) > a.min(axis=0))
        if len(keep) == 0:
            return _Basis("intercept", 1)
        kept = a if len(keep) == a.shape[1] else a[:, keep]
        means = kept.mean(axis=0)
        features = np.ascontiguousarray(kept - means)
        gram = features.T @ features
        return self._cholesky(features, np.zeros(len(keep)), gram, uncentred_means=means)

    def _cholesky(
        self,
        features: npt.NDArray[np.number],
        means: FloatArray,
        centred_gram: FloatArray,
        uncentred_means: FloatArray | None = None,
    ) -> _Basis | None:
        """Factor the correlation matrix; None when the SVD path must decide instead."""
        n = self.n_rows
        variances = np.diagonal(centred_gram).copy()
        if features.shape[1] >= n or not (variances > 0).all():
            return None
        norms = np.sqrt(variances)
        correlation = centred_gram / norms[:, None] / norms[None, :]
        factor, info = lapack.dpotrf(correlation, lower=0, clean=1)
        if info != 0:
            return None
        anorm = float(np.abs(correlation).sum(axis=0).max())
        rcond, info = lapack.dpocon(factor, anorm)
        if info != 0 or not rcond >= MIN_FAST_RCOND:
            return None
        # Would lstsq's cut-off drop a direction of [features, 1]? Bound its smallest
        # singular value from below, its largest from above (see the module docstring).
        mu = means if uncentred_means is None else uncentred_means
        mu2 = float(mu @ mu)
        lam_min_correlation = rcond * anorm / 10.0  # ≈ 1 / ‖C⁻¹‖₁ with a safety factor
        alpha = lam_min_correlation * float(variances.min())
        lam_m = 2.0 / ((2.0 + mu2) + np.sqrt((2.0 + mu2) ** 2 - 4.0))
        smallest2 = min(alpha, float(n)) * lam_m
        largest2 = float(variances.sum()) + n * mu2 + n
        if smallest2 <= 100.0 * self.rcond**2 * largest2:
            return None
        return _Basis(
            "cholesky",
            features.shape[1] + 1,
            features=features,
            means=means,
            scales=norms,
            cholesky=np.asarray(factor),
        )

    def _svd(self, a: npt.NDArray[np.number]) -> _Basis:
        """numerai-tools' rule on [features, 1]: drop singular values ≤ rcond × the largest."""
        augmented = np.empty((self.n_rows, self.n_features + 1), dtype=np.float64)
        augmented[:, : self.n_features] = a
        augmented[:, self.n_features] = 1.0
        u, s, _ = np.linalg.svd(augmented, full_matrices=False)
        keep = s > self.rcond * s[0]
        return _Basis("svd", int(keep.sum()), orthonormal=np.ascontiguousarray(u[:, keep]))

    # -- projection ----------------------------------------------------------------------

    def residual_rows(self, rows: FloatArray, proportion: float = 1.0) -> FloatArray:
        """(K, N) rows minus `proportion` × their projection on span(1, features).

        Rows must be float64 without NaN (not checked here); see `apply` for the checked form.
        """
        b = self._basis
        means = rows.mean(axis=1, keepdims=True)
        if b.method == "intercept":
            return np.asarray(rows - proportion * means)
        if b.method == "svd":
            assert b.orthonormal is not None
            fitted = (rows @ b.orthonormal) @ b.orthonormal.T
            return np.asarray(rows - proportion * fitted)
        assert b.features is not None and b.means is not None
        assert b.scales is not None and b.cholesky is not None
        features = b.features.astype(np.float64, copy=False)
        centred = rows - means
        scaled = (centred @ features) / b.scales  # (K, F')
        solved, info = lapack.dpotrs(b.cholesky, scaled.T, lower=0)
        if info != 0:  # pragma: no cover - dpotrs only fails on bad arguments
            raise RuntimeError(f"dpotrs failed with info={info}")
        z = solved.T / b.scales
        fitted = z @ features.T
        fitted -= (z @ b.means)[:, None]
        if proportion == 1.0:
            centred -= fitted
            return np.asarray(centred)
        return np.asarray(rows - proportion * (fitted + means))

    def apply(self, values: npt.ArrayLike, proportion: float = 1.0) -> FloatArray:
        """`values` (N, K) or (N,) minus `proportion` × their fit on [neutralizers, 1].

        A constant column comes back as NaN (as numerai-tools'), the others are unaffected.
        """
        x = np.asarray(values, dtype=np.float64)
        vector = x.ndim == 1
        if vector:
            x = x[:, None]
        if x.ndim != 2:
            raise ValueError(f"values must be an (N, K) matrix, got shape {x.shape}")
        self.check_rows(x.shape[0], "values")
        missing = np.isnan(x)
        if missing.any():
            raise ValueError(f"values contain {int(missing.sum())} NaN: fill or drop them first")
        rows = np.ascontiguousarray(x.T)
        out = self.residual_rows(rows, proportion)
        out[np.ptp(rows, axis=1) == 0] = np.nan
        return out[0] if vector else out.T

    def check_rows(self, n_rows: int, what: str) -> None:
        if n_rows != self.n_rows:
            raise ValueError(
                f"{what} have {n_rows} rows but the {self.name} have {self.n_rows}: they must "
                "be the same rows in the same order"
            )


def neutralise(
    values: npt.ArrayLike,
    neutralizers: npt.ArrayLike | Neutraliser,
    proportion: float = 1.0,
) -> FloatArray:
    """numerai-tools' `neutralize` on arrays: `values` − proportion × fit on [neutralizers, 1].

    Constant columns come back as NaN; NaN in either input or mismatched rows raise ValueError.
    """
    return _neutraliser(neutralizers).apply(values, proportion)


def _neutraliser(features: npt.ArrayLike | Neutraliser, name: str = "neutralizers") -> Neutraliser:
    return features if isinstance(features, Neutraliser) else Neutraliser(features, name=name)


def _checked_matrix(values: npt.ArrayLike, name: str) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise ValueError(f"{name} must be an (N, K) matrix, got shape {x.shape}")
    missing = np.isnan(x)
    if missing.any():
        raise ValueError(
            f"{name} contain {int(missing.sum())} NaN: every row is used (nothing is "
            "aligned here), so fill or drop them, and the matching rows of the other inputs"
        )
    return x


def _neutral_rows(
    neutraliser: Neutraliser, gaussian_rows: FloatArray
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Residual rows and which of them carry signal (not constant, not fully explained)."""
    residual = neutraliser.residual_rows(gaussian_rows)
    centred = gaussian_rows - gaussian_rows.mean(axis=1, keepdims=True)
    spread = np.einsum("ij,ij->i", centred, centred)
    left = np.einsum("ij,ij->i", residual, residual)
    return residual, left > EXPLAINED_TOL**2 * spread


def neutralised_predictions(
    gaussian_preds: npt.ArrayLike, features: npt.ArrayLike | Neutraliser
) -> FloatArray:
    """Gaussianised (N, K) predictions neutralised to the features, then scaled to unit
    population std: the first step of FNC. A constant or fully explained column is NaN."""
    x = _checked_matrix(gaussian_preds, "gaussian_preds")
    neutraliser = _neutraliser(features, "features")
    neutraliser.check_rows(x.shape[0], "gaussian_preds")
    residual, valid = _neutral_rows(neutraliser, np.ascontiguousarray(x.T))
    std = residual.std(axis=1)
    residual[valid] /= std[valid, None]
    residual[~valid] = np.nan
    out = residual.T
    return out[:, 0] if np.ndim(gaussian_preds) == 1 else out


def fnc_scores(
    predictions: npt.ArrayLike,
    features: npt.ArrayLike | Neutraliser,
    targets: npt.ArrayLike,
    *,
    top_bottom: int | None = None,
    target_mean: float | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    workers: int | None = None,
) -> FloatArray:
    """FNC of every column of (N, K) predictions (no NaN) against (N,) targets.

    Each column is tie-kept ranked, Gaussianised and neutralised to the features (all N rows);
    then CORR (crowdquant.scoring.corr) of the residuals is taken over the rows whose target
    is not NaN, the target centred by `target_mean` (default: the mean of its non-NaN
    values). A constant or fully explained column scores 0. The unit-std rescaling of the
    reference is skipped: CORR ranks again, so it cannot change a score.
    """
    matrix = _checked_matrix(predictions, "predictions")
    neutraliser = _neutraliser(features, "features")
    n_rows, n_columns = matrix.shape
    neutraliser.check_rows(n_rows, "predictions")
    t = np.asarray(targets, dtype=np.float64)
    if t.shape != (n_rows,):
        raise ValueError(f"targets must have shape ({n_rows},), got {t.shape}")
    scored = ~np.isnan(t)
    if scored.sum() < 2:
        raise ValueError("targets need at least two non-NaN values")
    centre = float(t[scored].mean()) if target_mean is None else target_mean
    rows = None if scored.all() else np.flatnonzero(scored)
    t_scored = t if rows is None else t[rows]
    checked_top_bottom(top_bottom, len(t_scored))
    out = np.zeros(n_columns, dtype=np.float64)

    def work(start: int, stop: int) -> None:
        gaussian = gaussianised_rows(column_rows(matrix, start, stop))
        residual, valid = _neutral_rows(neutraliser, gaussian)
        if not valid.any():
            return
        kept = residual[valid] if rows is None else residual[np.ix_(valid, rows)]
        out[start:stop][valid] = corr_scores(
            kept.T,
            t_scored,
            top_bottom=top_bottom,
            target_mean=centre,
            chunk_size=max(len(kept), 1),
            workers=1,
        )

    threads = min(workers or default_workers(), -(-n_columns // max(chunk_size, 1)))
    with _blas_threads(1 if threads > 1 else None):  # no BLAS threads inside worker threads
        for_column_chunks(n_columns, work, chunk_size, threads)
    return out


def _blas_threads(limit: int | None) -> AbstractContextManager[object]:
    return threadpool_limits(limits=limit, user_api="blas") if limit else nullcontext()


class _EraRows:
    """Row positions of each era (by sorted label): slices when rows are grouped in order."""

    def __init__(self, eras: npt.ArrayLike) -> None:
        labels, inverse = np.unique(np.asarray(eras), return_inverse=True)
        inverse = inverse.reshape(-1)
        self.labels = labels
        self.n_rows = len(inverse)
        order = np.argsort(inverse, kind="stable")
        self._bounds = np.searchsorted(inverse[order], np.arange(len(labels) + 1))
        self._order = None if bool((order == np.arange(self.n_rows)).all()) else order

    def rows(self, era: int) -> slice | IntArray:
        start, stop = int(self._bounds[era]), int(self._bounds[era + 1])
        return slice(start, stop) if self._order is None else self._order[start:stop]


class EraNeutralisers:
    """Each era's `Neutraliser`, built once from (N, F) features and (N,) era labels.

    Diagnostics score many submissions against the same validation eras; preparing the eras
    once takes the factorisations, the bulk of a cold per-era FNC, out of every later call.
    Rows need not be grouped by era. Memory: the features (int8 bins stay int8) plus an
    F × F factor per era.
    """

    def __init__(
        self, features: npt.ArrayLike, eras: npt.ArrayLike, *, workers: int | None = None
    ) -> None:
        a = np.asarray(features)
        if a.ndim == 1:
            a = a[:, None]
        grouping = _EraRows(eras)
        if a.ndim != 2 or grouping.n_rows != a.shape[0]:
            raise ValueError(
                f"features must be an (N, F) matrix with one era label a row, got shape "
                f"{a.shape} and {grouping.n_rows} era labels"
            )
        self.labels = grouping.labels
        self.n_rows = grouping.n_rows
        self.rows = grouping.rows
        self.neutralisers = _per_era(
            len(self.labels), lambda era: Neutraliser(a[self.rows(era)], name="features"), workers
        )


def _per_era(n_eras: int, work: Callable[[int], _T], workers: int | None) -> list[_T]:
    """`work(era)` for every era, on up to `workers` threads, BLAS single-threaded (small
    per-era products gain nothing from BLAS threads and suffer when cores are shared)."""
    threads = min(workers or default_workers(), max(n_eras, 1))
    with _blas_threads(1):
        if threads <= 1:
            return [work(era) for era in range(n_eras)]
        with ThreadPoolExecutor(max_workers=threads) as pool:
            return list(pool.map(work, range(n_eras)))


def fnc_by_era(
    predictions: npt.ArrayLike,
    features: npt.ArrayLike | EraNeutralisers,
    targets: npt.ArrayLike,
    eras: npt.ArrayLike | None = None,
    *,
    top_bottom: int | None = None,
    workers: int | None = None,
) -> tuple[npt.NDArray[Any], FloatArray]:
    """FNC per era: the eras' sorted labels and an (E, K) score matrix ((E,) for a vector).

    `features` are (N, F) with `eras` (N,) labels, or an `EraNeutralisers` prepared from
    them. Each era is scored as `fnc_scores` scores a batch: its own features and its own
    target mean; rows with a NaN target are neutralised but not scored.
    """
    matrix = _checked_matrix(predictions, "predictions")
    t = np.asarray(targets, dtype=np.float64)
    if isinstance(features, EraNeutralisers):
        if eras is not None:
            raise ValueError("eras are already part of the EraNeutralisers")
        prepared: EraNeutralisers | None = features
        labels, rows_of = features.labels, features.rows
        n_features_rows = features.n_rows
        feature_matrix = None
    else:
        if eras is None:
            raise ValueError("eras are needed with raw features")
        prepared = None
        feature_matrix = np.asarray(features)
        grouping = _EraRows(eras)
        labels, rows_of = grouping.labels, grouping.rows
        n_features_rows = feature_matrix.shape[0]
        if grouping.n_rows != n_features_rows:
            raise ValueError(
                f"eras have {grouping.n_rows} labels but the features have {n_features_rows} rows"
            )
    n_rows = matrix.shape[0]
    for name, length in (("features", n_features_rows), ("targets", len(t))):
        if length != n_rows:
            raise ValueError(f"{name} have {length} rows but the predictions have {n_rows}")

    def work(era: int) -> FloatArray:
        rows = rows_of(era)
        if prepared is not None:
            neutraliser = prepared.neutralisers[era]
        else:
            assert feature_matrix is not None
            neutraliser = Neutraliser(feature_matrix[rows], name="features")
        return fnc_scores(
            matrix[rows],
            neutraliser,
            t[rows],
            top_bottom=top_bottom,
            chunk_size=max(matrix.shape[1], 1),
            workers=1,
        )

    scores = _per_era(len(labels), work, workers)
    out = np.array(scores, dtype=np.float64).reshape(len(labels), matrix.shape[1])
    return labels, (out[:, 0] if np.ndim(predictions) == 1 else out)


def max_feature_exposure(
    predictions: npt.ArrayLike, features: npt.ArrayLike, *, chunk_size: int = DEFAULT_CHUNK
) -> tuple[IntArray, FloatArray]:
    """Per column of (N, K) predictions: the feature with the largest |Pearson correlation|
    and that value. A constant column (or all-constant features) gives index −1 and NaN; a
    constant feature is skipped (its correlation is undefined), as in numerai-tools."""
    matrix = _checked_matrix(predictions, "predictions")
    feature_matrix = _checked_matrix(features, "features")
    if feature_matrix.shape[0] != matrix.shape[0]:
        raise ValueError(
            f"features have {feature_matrix.shape[0]} rows but the predictions have "
            f"{matrix.shape[0]}: they must be the same rows in the same order"
        )
    unit_features, usable = _unit_rows(np.ascontiguousarray(feature_matrix.T))
    n_columns = matrix.shape[1]
    index = np.full(n_columns, -1, dtype=np.intp)
    value = np.full(n_columns, np.nan)
    if not usable.any():
        return index, value
    unit_features = unit_features[usable]
    feature_ids = np.flatnonzero(usable)
    for start in range(0, n_columns, chunk_size):
        stop = min(start + chunk_size, n_columns)
        unit, valid = _unit_rows(column_rows(matrix, start, stop))
        exposure = np.abs(unit @ unit_features.T)
        best = np.argmax(exposure, axis=1)
        index[start:stop] = np.where(valid, feature_ids[best], -1)
        value[start:stop] = np.where(valid, exposure[np.arange(stop - start), best], np.nan)
    return index, value


def _unit_rows(rows: FloatArray) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Rows centred and scaled to unit length (for Pearson by dot product), and which rows
    are not constant; an exactly constant row (whose float mean may differ from its value in
    the last bit) is zeroed and flagged."""
    unit, valid = unit_rows(rows)
    constant = np.ptp(rows, axis=1) == 0
    unit[constant] = 0.0
    return unit, valid & ~constant


# -- pandas wrappers ---------------------------------------------------------------------


def _check_same_sorted_index(data: pd.DataFrame | pd.Series, features: pd.DataFrame) -> None:
    check_unique_ids(data, "predictions")
    check_unique_ids(features, "features")
    if not data.index.equals(features.index):
        raise AlignmentError(
            "predictions and features must have identical indexes (same ids, same order): "
            "feature neutralisation is not aligned by id, as in numerai-tools; "
            f"{len(data.index.difference(features.index))} prediction id(s) are not in the "
            f"features and {len(features.index.difference(data.index))} feature id(s) are not "
            "in the predictions"
        )
    if not data.index.is_monotonic_increasing:
        raise AlignmentError(
            "predictions and features must be sorted by id (sort_index() both), as "
            "numerai-tools requires"
        )


def feature_neutral_corr(
    predictions: pd.DataFrame | pd.Series,
    features: pd.DataFrame,
    targets: pd.Series,
    top_bottom: int | None = None,
) -> pd.Series:
    """FNC per prediction column, as numerai-tools' `feature_neutral_corr` computes it.

    Predictions and features must share one sorted index and have no NaN (they are not
    aligned before neutralising); then the 20 % rule applies against the targets, which are
    centred over all their non-NaN rows first. A constant column scores 0 instead of failing
    the batch.
    """
    frame = as_frame(predictions)
    _check_same_sorted_index(frame, features)
    target_mean = float(targets.mean())
    stand_in = pd.Series(0.0, index=frame.index)  # the residuals have no NaN row
    ids = aligned_ids({"targets": targets, "predictions": stand_in})
    target_values = np.full(len(frame), np.nan)
    target_values[frame.index.get_indexer(ids)] = targets.loc[ids].to_numpy(dtype=np.float64)
    scores = fnc_scores(
        frame.to_numpy(dtype=np.float64),
        Neutraliser(features.to_numpy(), name="features"),
        target_values,
        top_bottom=top_bottom,
        target_mean=target_mean,
    )
    return pd.Series(scores, index=frame.columns, dtype=np.float64)


def max_feature_correlation(
    predictions: pd.Series, features: pd.DataFrame, top_bottom: int | None = None
) -> tuple[str, float]:
    """The feature most correlated (in absolute value) with `predictions`, and that value.

    As numerai-tools' `max_feature_correlation`: identical sorted indexes, no NaN; with
    `top_bottom=n` only the rows of the n lowest and n highest predictions count.
    """
    _check_same_sorted_index(predictions, features)
    values = predictions.to_numpy(dtype=np.float64)
    feature_values = features.to_numpy(dtype=np.float64)
    keep = checked_top_bottom(top_bottom, len(values))
    if keep:
        rows = np.sort(top_bottom_indices(values[None, :], keep)[0])
        values, feature_values = values[rows], feature_values[rows]
    index, value = max_feature_exposure(values, feature_values)
    if index[0] < 0:
        raise ValueError("predictions (or every feature) are constant: no correlation defined")
    return str(features.columns[index[0]]), float(value[0])
