"""The 2017-era ("seeds'") tournament rules: log-loss, consistency, originality, concordance.

In that tournament the target was binary and a submission gave a probability for every
tournament row (validation, test and live). A submission was paid only if it was
*consistent* (beat the ln 2 benchmark in enough validation eras), *original* (not a copy of
someone else's submission) and *concordant* (its validation, test and live predictions look
alike). The checks follow numerai/submission-criteria (2017–19) and numerox (2018). Every
check returns a frozen result that records the thresholds it used, so a verdict can be
reproduced later.

Conventions (as elsewhere in ``crowdquant.scoring``): predictions are batch-first, an
``(N rows × K submissions)`` matrix, and rows are assumed already aligned by id (sorted by
id, as submission-criteria did). Missing values are refused rather than dropped.

Deliberate choices, documented where they apply:

* log-loss clips the probability given to the true class to ``[eps, 1 − eps]`` with
  :data:`LOGLOSS_EPS` = ``1e-15`` (the long-time scikit-learn default; scikit-learn ≥ 1.5
  uses the float64 machine epsilon, which can be passed as ``eps`` to match it exactly on
  predictions of exactly 0 or 1);
* consistency uses ``ln 2`` as benchmark by default; the 2019 submission-criteria code used
  the rounded ``0.693`` (:data:`BENCHMARK_LOGLOSS_2019`), which can be passed instead, and
  a round whose id map has the benchmark models' probabilities passes their log-loss in
  each era (`upload_checks`);
* originality's verdict does not depend on the order the others are visited in (the
  reference stopped at the first hit); its ``reason`` takes the first applicable of
  correlated → duplicate → similar;
* concordance skips a cluster that has no row in one of the three splits (the reference
  crashed in ``ks_2samp``), and records which clusters were skipped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Final, overload

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.cluster import MiniBatchKMeans

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# ---------------------------------------------------------------------------------------------
# Log-loss
# ---------------------------------------------------------------------------------------------

LOGLOSS_EPS: Final = 1e-15
"""The true class's probability is clipped to [eps, 1 − eps] before the log (0, 1 stay finite)."""

BENCHMARK_LOGLOSS: Final = math.log(2.0)
"""The log-loss of always predicting 0.5: −ln(0.5) = ln 2 ≈ 0.693147."""

BENCHMARK_LOGLOSS_2019: Final = 0.693
"""The rounded benchmark hard-coded in submission-criteria's consistency (2017–19)."""


def _probability_matrix(probabilities: npt.ArrayLike, name: str = "probabilities") -> FloatArray:
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise ValueError(f"{name} must be 1-D or 2-D (rows × submissions), got {p.ndim}-D")
    if np.isnan(p).any():
        raise ValueError(f"{name} contain NaN")
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError(f"{name} must lie in [0, 1]")
    return p


def _binary_targets(targets: npt.ArrayLike, n_rows: int) -> npt.NDArray[np.bool_]:
    y = np.asarray(targets, dtype=np.float64)
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"targets must be 1-D with one value per row ({n_rows}), got {y.shape}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("targets must be binary: every value 0 or 1 (NaN not allowed)")
    return np.asarray(y == 1.0)


def _elementwise_logloss(p: FloatArray, y: npt.NDArray[np.bool_], eps: float) -> FloatArray:
    if not 0.0 <= eps < 0.5:
        raise ValueError(f"eps must lie in [0, 0.5), got {eps}")
    # clip the probability given to the true class, as scikit-learn does, so that both a
    # certain right and a certain wrong answer are clipped symmetrically (1 − (1 − eps) ≠ eps)
    likelihood = np.clip(np.where(y[:, None], p, 1.0 - p), eps, 1.0 - eps)
    with np.errstate(divide="ignore"):
        return np.asarray(-np.log(likelihood))


def logloss_batch(
    probabilities: npt.ArrayLike, targets: npt.ArrayLike, eps: float = LOGLOSS_EPS
) -> FloatArray:
    """Mean binary log-loss per column of an (N, K) probability matrix: shape (K,).

    ``targets`` is a length-N vector of 0/1. Probabilities must lie in [0, 1] and are clipped
    to [eps, 1 − eps]; a 1-D input is one submission (result of shape (1,)).
    """
    p = _probability_matrix(probabilities)
    if p.shape[0] == 0:
        raise ValueError("log-loss of zero rows is undefined")
    y = _binary_targets(targets, p.shape[0])
    return np.asarray(_elementwise_logloss(p, y, eps).mean(axis=0))


def logloss(
    probabilities: npt.ArrayLike, targets: npt.ArrayLike, eps: float = LOGLOSS_EPS
) -> float:
    """Binary log-loss of one submission: −mean(y·ln p + (1 − y)·ln(1 − p)), p clipped."""
    p = np.asarray(probabilities, dtype=np.float64)
    if p.ndim != 1:
        raise ValueError("logloss takes one submission (1-D); use logloss_batch for (N, K)")
    return float(logloss_batch(p, targets, eps)[0])


@overload
def per_era_logloss(
    probabilities: pd.Series,
    targets: npt.ArrayLike,
    eras: npt.ArrayLike,
    eps: float = ...,
) -> pd.Series: ...
@overload
def per_era_logloss(
    probabilities: pd.DataFrame | npt.ArrayLike,
    targets: npt.ArrayLike,
    eras: npt.ArrayLike,
    eps: float = ...,
) -> pd.DataFrame: ...
def per_era_logloss(
    probabilities: pd.Series | pd.DataFrame | npt.ArrayLike,
    targets: npt.ArrayLike,
    eras: npt.ArrayLike,
    eps: float = LOGLOSS_EPS,
) -> pd.Series | pd.DataFrame:
    """Log-loss per era: an (eras × submissions) frame, eras sorted, index named ``era``.

    A Series of probabilities gives a Series; a DataFrame keeps its column labels; an array
    gets columns 0..K−1. ``eras`` holds one label per row. Values are taken positionally, so
    align the rows (e.g. by id) first.
    """
    p = _probability_matrix(probabilities)
    y = _binary_targets(targets, p.shape[0])
    era = np.asarray(eras)
    if era.ndim != 1 or len(era) != p.shape[0]:
        raise ValueError(f"eras must be 1-D with one label per row ({p.shape[0]})")
    if pd.isna(era).any():
        raise ValueError("eras contain missing labels")
    columns: Sequence[Hashable]
    if isinstance(probabilities, pd.DataFrame):
        columns = list(probabilities.columns)
    elif isinstance(probabilities, pd.Series):
        columns = [probabilities.name if probabilities.name is not None else 0]
    else:
        columns = list(range(p.shape[1]))
    losses = pd.DataFrame(_elementwise_logloss(p, y, eps), columns=pd.Index(columns))
    by_era = losses.groupby(era, sort=True).mean()
    by_era.index.name = "era"
    if isinstance(probabilities, pd.Series):
        series = by_era.iloc[:, 0]
        series.name = probabilities.name
        return series
    return by_era


# ---------------------------------------------------------------------------------------------
# Consistency
# ---------------------------------------------------------------------------------------------

CONSISTENCY_2017: Final = 0.75
"""Consistency ≥ 75 % of validation eras (numerox ``CONSISTENCY_GTE``, Jan 2018)."""

CONSISTENCY_2018: Final = 0.58
"""Consistency ≥ 58 %, i.e. 7 of 12 eras (numerox, April 2018)."""


def _era_losses(per_era_logloss: npt.ArrayLike) -> FloatArray:
    values = np.asarray(per_era_logloss, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2:
        raise ValueError("per-era log-loss must be 1-D (eras) or 2-D (eras × submissions)")
    if values.shape[0] == 0:
        raise ValueError("consistency of zero eras is undefined")
    if np.isnan(values).any():
        raise ValueError("per-era log-loss contains NaN")
    return values


Benchmark = float | npt.ArrayLike
"""One log-loss for every era, or one per era (the benchmark models' in that era)."""


def _era_benchmarks(benchmark: Benchmark, n_eras: int) -> FloatArray:
    values = np.asarray(benchmark, dtype=np.float64)
    if values.ndim == 0:
        return np.full((n_eras, 1), float(values))
    if values.shape != (n_eras,):
        raise ValueError(f"the benchmark needs one log-loss per era ({n_eras}), got {values.shape}")
    if np.isnan(values).any():
        raise ValueError("the benchmark's per-era log-loss contains NaN")
    return values[:, None]


def consistency_batch(
    per_era_logloss: pd.DataFrame | npt.ArrayLike, benchmark: Benchmark = BENCHMARK_LOGLOSS
) -> FloatArray:
    """Per column of an (eras × K) table: the share of eras with log-loss < benchmark."""
    values = _era_losses(per_era_logloss)
    return np.asarray((values < _era_benchmarks(benchmark, values.shape[0])).mean(axis=0))


def consistency(
    per_era_logloss: pd.Series | npt.ArrayLike, benchmark: Benchmark = BENCHMARK_LOGLOSS
) -> float:
    """Share (0–1) of eras whose log-loss is strictly below the benchmark.

    submission-criteria reported it ×100 (a percentage); here it is a fraction so that it
    compares directly with :data:`CONSISTENCY_2017` and :data:`CONSISTENCY_2018`.
    """
    values = np.asarray(per_era_logloss, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError("consistency takes one submission's per-era log-loss (1-D)")
    return float(consistency_batch(values, benchmark)[0])


def is_consistent(value: float, threshold: float = CONSISTENCY_2018) -> bool:
    """Whether a consistency fraction passes: value ≥ threshold (numerox's ``>=``)."""
    return bool(value >= threshold)


@dataclass(frozen=True)
class ConsistencyResult:
    """A consistency verdict with the benchmark (one log-loss, or one per era) and threshold
    it was judged against."""

    consistency: float
    eras_below_benchmark: int
    n_eras: int
    consistent: bool
    threshold: float
    benchmark: float | tuple[float, ...]


def check_consistency(
    per_era_logloss: pd.Series | npt.ArrayLike,
    threshold: float = CONSISTENCY_2018,
    benchmark: Benchmark = BENCHMARK_LOGLOSS,
    expected_eras: int | None = None,
) -> ConsistencyResult:
    """Consistency of one submission and whether it passes ``threshold``.

    ``expected_eras`` reproduces submission-criteria's assertion that validation has
    exactly that many eras (12 in 2018–19); a mismatch raises ValueError.
    """
    values = _era_losses(per_era_logloss)
    if values.shape[1] != 1:
        raise ValueError("check_consistency takes one submission's per-era log-loss (1-D)")
    n_eras = values.shape[0]
    if expected_eras is not None and n_eras != expected_eras:
        raise ValueError(f"expected {expected_eras} eras, got {n_eras}")
    per_era = _era_benchmarks(benchmark, n_eras)[:, 0]
    below = int((values[:, 0] < per_era).sum())
    share = below / n_eras
    return ConsistencyResult(
        consistency=share,
        eras_below_benchmark=below,
        n_eras=n_eras,
        consistent=is_consistent(share, threshold),
        threshold=threshold,
        benchmark=float(per_era[0]) if np.ndim(benchmark) == 0 else tuple(map(float, per_era)),
    )


# ---------------------------------------------------------------------------------------------
# Two-sample Kolmogorov–Smirnov statistic (exact, vectorised)
# ---------------------------------------------------------------------------------------------

_CHUNK_ELEMENTS: Final = 1 << 17  # bound on the temporaries of the batched KS helpers (cache)


def _sample(values: npt.ArrayLike, name: str, ndim: int) -> FloatArray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D, got {x.ndim}-D")
    if x.shape[0] == 0:
        raise ValueError(f"{name} is empty; the KS statistic needs at least one value")
    if np.isnan(x).any():
        raise ValueError(f"{name} contains NaN")
    return x


def _tie_counts(sorted_rows: FloatArray) -> tuple[IntArray, IntArray]:
    """For each entry of row-wise sorted samples: #values < it and #values ≤ it (its row)."""
    m = sorted_rows.shape[1]
    position = np.arange(m, dtype=np.int64)
    changes = sorted_rows[:, 1:] != sorted_rows[:, :-1]
    if changes.all():  # no ties, the usual case for float predictions
        return np.broadcast_to(position, sorted_rows.shape), np.broadcast_to(
            position + 1, sorted_rows.shape
        )
    run_starts = np.ones(sorted_rows.shape, dtype=bool)
    run_starts[:, 1:] = changes
    below = np.maximum.accumulate(np.where(run_starts, position, 0), axis=1)
    run_ends = np.ones(sorted_rows.shape, dtype=bool)
    run_ends[:, :-1] = changes
    up_to = np.where(run_ends, position + 1, m)
    at_most = np.minimum.accumulate(up_to[:, ::-1], axis=1)[:, ::-1]
    return np.asarray(below), np.asarray(at_most)


def _ks_one_vs_rows(a_sorted: FloatArray, b_rows: FloatArray) -> FloatArray:
    """KS of a sorted sample (n,) against each row of (M, m) sorted along rows, exactly.

    With F_a, F_b the empirical CDFs, sup(F_b − F_a) is reached at a point of b and
    sup(F_a − F_b) at the left limit of a point of b, so only b's points are needed:
    D = max(F_b(x) − F_a(x), F_a(x⁻) − F_b(x⁻), 0) over x in b. Integer arithmetic; rows
    are searched one after another, so each search runs over ascending keys.
    """
    n = a_sorted.shape[0]
    m = b_rows.shape[1]
    b_below, b_at_most = _tie_counts(b_rows)
    flat = b_rows.ravel()
    a_at_most = np.searchsorted(a_sorted, flat, side="right").astype(np.int64)
    if n > 1 and not (a_sorted[1:] != a_sorted[:-1]).all():
        a_below = np.searchsorted(a_sorted, flat, side="left").astype(np.int64)
    else:  # no ties in a: at most one value of a equals the key, at position a_at_most − 1
        equal = a_sorted[np.maximum(a_at_most - 1, 0)] == flat
        a_below = a_at_most - (equal & (a_at_most > 0))
    a_at_most = a_at_most.reshape(b_rows.shape)
    a_below = a_below.reshape(b_rows.shape)
    plus = (b_at_most * n - a_at_most * m).max(axis=1)
    minus = (a_below * m - b_below * n).max(axis=1)
    return np.asarray(np.maximum(np.maximum(plus, minus), 0) / (n * m))


def _ks_sorted_one_vs_rows(
    a_sorted: FloatArray, rows: FloatArray, which: IntArray | None = None
) -> FloatArray:
    """:func:`_ks_one_vs_rows` in chunks bounding the temporaries (``which`` picks rows)."""
    index = np.arange(rows.shape[0]) if which is None else which
    step = max(1, _CHUNK_ELEMENTS // max(rows.shape[1], 1))
    parts = [
        _ks_one_vs_rows(a_sorted, rows[index[i : i + step]]) for i in range(0, len(index), step)
    ]
    return np.asarray(np.concatenate(parts)) if parts else np.empty(0, dtype=np.float64)


def ks_statistic_many(
    sample: npt.ArrayLike, samples: npt.ArrayLike, *, presorted: bool = False
) -> FloatArray:
    """Two-sample KS statistic of one sample (n,) against every column of (m, M): (M,).

    Equals ``scipy.stats.ks_2samp(sample, samples[:, j]).statistic`` for every j (ties
    included), without the p-value. ``presorted=True`` skips sorting when the caller
    already sorted ``sample`` and each column of ``samples`` ascending.
    """
    a = _sample(sample, "sample", 1)
    b = _sample(samples, "samples", 2)
    rows = np.ascontiguousarray(b.T)
    if not presorted:
        a = np.sort(a)
        rows.sort(axis=1)
    return _ks_sorted_one_vs_rows(a, rows)


def ks_statistic(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Two-sample KS statistic sup|F_a − F_b| of two 1-D samples (sizes may differ)."""
    b_vector = _sample(b, "b", 1)
    return float(ks_statistic_many(a, b_vector[:, None])[0])


def ks_statistic_paired(a: npt.ArrayLike, b: npt.ArrayLike) -> FloatArray:
    """KS statistic between column j of a (n1, K) and column j of b (n2, K), for each j: (K,).

    Merges each column pair in one stable argsort; the running count difference, read at the
    last entry of each run of tied values, is n1·n2·(F_a − F_b).
    """
    x = _sample(a, "a", 2)
    y = _sample(b, "b", 2)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"a and b need the same number of columns, got {x.shape} and {y.shape}")
    n1, n2 = x.shape[0], y.shape[0]
    out = np.empty(x.shape[1], dtype=np.float64)
    step = max(1, _CHUNK_ELEMENTS // (n1 + n2))
    for j in range(0, x.shape[1], step):
        both = np.concatenate([x[:, j : j + step], y[:, j : j + step]], axis=0)
        order = np.argsort(both, axis=0, kind="stable")
        merged = np.take_along_axis(both, order, axis=0)
        difference = np.cumsum(np.where(order < n1, n2, -n1).astype(np.int64), axis=0)
        run_ends = np.ones(merged.shape, dtype=bool)
        run_ends[:-1] = merged[1:] != merged[:-1]
        out[j : j + step] = np.abs(np.where(run_ends, difference, 0)).max(axis=0) / (n1 * n2)
    return out


# ---------------------------------------------------------------------------------------------
# Originality
# ---------------------------------------------------------------------------------------------

MAX_CORRELATION: Final = 0.95
EXACT_DUPLICATE_KS: Final = 0.005
SIMILAR_KS: Final = 0.03
MAX_SIMILAR_MODELS: Final = 1


@dataclass(frozen=True)
class OriginalityThresholds:
    """submission-criteria's originality constants (2017–18).

    Not original when |Pearson| > ``max_correlation`` with another non-constant submission;
    otherwise when the KS statistic to another is < ``exact_duplicate_ks``, or when
    ``max_similar_models`` others lie within KS ≤ ``similar_ks``.
    """

    max_correlation: float = MAX_CORRELATION
    exact_duplicate_ks: float = EXACT_DUPLICATE_KS
    similar_ks: float = SIMILAR_KS
    max_similar_models: int = MAX_SIMILAR_MODELS

    def __post_init__(self) -> None:
        if self.max_similar_models < 1:
            raise ValueError("max_similar_models must be at least 1")


class OriginalityReason(StrEnum):
    ORIGINAL = "original"
    CORRELATED = "correlated"  # |Pearson| > max_correlation with some other submission
    DUPLICATE = "duplicate"  # KS < exact_duplicate_ks to some other submission
    SIMILAR = "similar"  # at least max_similar_models others with KS ≤ similar_ks


@dataclass(frozen=True)
class OriginalityResult:
    """An originality verdict against ``compared_with`` other submissions.

    ``max_abs_correlation`` is NaN when no pair had two non-constant submissions. The KS
    step runs only when the correlation step passes (as in the reference), so after a
    ``CORRELATED`` verdict ``min_ks`` is NaN and ``similar_count`` 0. ``matched`` is the
    position, among the others compared, of the one that decided a non-original verdict
    (the most correlated, or the closest by KS).
    """

    original: bool
    reason: OriginalityReason
    max_abs_correlation: float
    min_ks: float
    similar_count: int
    compared_with: int
    matched: int | None
    thresholds: OriginalityThresholds = field(default_factory=OriginalityThresholds)


def _is_constant(columns: FloatArray) -> npt.NDArray[np.bool_]:
    """Constant columns, judged exactly (max == min), not by a float std that may be 1e-17."""
    if columns.shape[0] == 0:
        return np.ones(columns.shape[1], dtype=bool)
    return np.asarray(columns.max(axis=0) == columns.min(axis=0))


def _unit_columns(columns: FloatArray) -> FloatArray:
    """Centred columns scaled to unit norm, so a matrix product gives Pearson correlations."""
    centred = columns - columns.mean(axis=0)
    norms = np.sqrt((centred * centred).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(np.where(norms > 0, centred / norms, 0.0))


def _decide(
    correlations: FloatArray,
    constant_self: bool,
    constant_others: npt.NDArray[np.bool_],
    ks_of: Callable[[], FloatArray],
    thresholds: OriginalityThresholds,
) -> OriginalityResult:
    compared = len(constant_others)
    usable = ~constant_others if not constant_self else np.zeros(compared, dtype=bool)
    abs_corr = np.abs(np.clip(correlations, -1.0, 1.0))
    max_corr = float(abs_corr[usable].max()) if usable.any() else math.nan
    if usable.any() and max_corr > thresholds.max_correlation:
        return OriginalityResult(
            original=False,
            reason=OriginalityReason.CORRELATED,
            max_abs_correlation=max_corr,
            min_ks=math.nan,
            similar_count=0,
            compared_with=compared,
            matched=int(np.flatnonzero(usable)[np.argmax(abs_corr[usable])]),
            thresholds=thresholds,
        )
    if compared == 0:
        return OriginalityResult(
            True, OriginalityReason.ORIGINAL, max_corr, math.nan, 0, 0, None, thresholds
        )
    ks = ks_of()
    closest = int(np.argmin(ks))
    min_ks = float(ks[closest])
    similar = int((ks <= thresholds.similar_ks).sum())
    if min_ks < thresholds.exact_duplicate_ks:
        reason = OriginalityReason.DUPLICATE
    elif similar >= thresholds.max_similar_models:
        reason = OriginalityReason.SIMILAR
    else:
        reason = OriginalityReason.ORIGINAL
    original = reason is OriginalityReason.ORIGINAL
    return OriginalityResult(
        original=original,
        reason=reason,
        max_abs_correlation=max_corr,
        min_ks=min_ks,
        similar_count=similar,
        compared_with=compared,
        matched=None if original else closest,
        thresholds=thresholds,
    )


def originality(
    submission: npt.ArrayLike,
    others: npt.ArrayLike,
    thresholds: OriginalityThresholds | None = None,
) -> OriginalityResult:
    """Is ``submission`` (N,) original with respect to every column of ``others`` (N, M)?

    Rows must be aligned (same ids, same order) for the correlation step; the KS step
    compares the value distributions only. ``others`` are the other users' submissions of
    the round; pass an (N, 0) array when there are none (then it is original).
    """
    limits = thresholds or OriginalityThresholds()
    own = _sample(submission, "submission", 1)
    rest = np.asarray(others, dtype=np.float64)
    if rest.ndim == 1:
        rest = rest[:, None]
    if rest.ndim != 2 or rest.shape[0] != own.shape[0]:
        raise ValueError(f"others must be (N={own.shape[0]}, M), got {rest.shape}")
    if np.isnan(rest).any():
        raise ValueError("others contain NaN")
    correlations = _unit_columns(rest).T @ _unit_columns(own[:, None])[:, 0]
    return _decide(
        correlations,
        bool(_is_constant(own[:, None])[0]),
        _is_constant(rest),
        lambda: ks_statistic_many(own, rest),
        limits,
    )


def originality_round(
    predictions: pd.DataFrame | npt.ArrayLike,
    owners: Sequence[Hashable] | None = None,
    thresholds: OriginalityThresholds | None = None,
) -> list[OriginalityResult]:
    """Originality of every submission of a round, columns of (N, K) in submission order.

    As in submission-criteria, submission k is compared with the *earlier* submissions
    (columns j < k) of *other* owners that were themselves judged original: copying an
    original model makes the copy non-original, not the model copied, and a rejected copy
    does not count against later submissions. Processing is sequential and deterministic
    (the reference also counted submissions still pending). ``owners`` gives one label per
    column; without it every column is its own owner. ``matched`` indexes columns of
    ``predictions``.

    Correlations come from one (K × K) matrix product; the KS statistics reuse the columns
    sorted once, so the work is about K²/2 merges of N values.
    """
    limits = thresholds or OriginalityThresholds()
    matrix = np.asarray(predictions, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError("predictions must be 2-D (rows × submissions)")
    if np.isnan(matrix).any():
        raise ValueError("predictions contain NaN")
    k = matrix.shape[1]
    owner = list(range(k)) if owners is None else list(owners)
    if len(owner) != k:
        raise ValueError(f"owners needs one label per column ({k}), got {len(owner)}")
    if k and matrix.shape[0] == 0:
        raise ValueError("predictions have no rows")
    unit = _unit_columns(matrix)
    correlations = unit.T @ unit
    constant = _is_constant(matrix)
    sorted_rows = np.sort(matrix.T, axis=1)  # one sorted submission per row, contiguous
    original = np.zeros(k, dtype=bool)
    results: list[OriginalityResult] = []
    for col in range(k):
        eligible = np.array(
            [j for j in range(col) if original[j] and owner[j] != owner[col]], dtype=np.int64
        )

        def ks_of(col: int = col, eligible: IntArray = eligible) -> FloatArray:
            return _ks_sorted_one_vs_rows(sorted_rows[col], sorted_rows, eligible)

        result = _decide(
            correlations[eligible, col], bool(constant[col]), constant[eligible], ks_of, limits
        )
        if result.matched is not None:
            result = replace(result, matched=int(eligible[result.matched]))
        original[col] = result.original
        results.append(result)
    return results


# ---------------------------------------------------------------------------------------------
# Concordance
# ---------------------------------------------------------------------------------------------

CONCORDANCE_THRESHOLD: Final = 0.12
KS_CRITICAL_95: Final = 1.36
"""c(α) of the two-sample KS test at α = 0.05: samples of n and m rows from one distribution
differ by more than c·√(1/n + 1/m) one time in twenty."""
CONCORDANCE_CLUSTERS: Final = 5
CONCORDANCE_RANDOM_STATE: Final = 1337
CONCORDANCE_BATCH_SIZE: Final = 1024
"""MiniBatchKMeans batch size: scikit-learn's default since 1.4 (the 2017 default was 100)."""
CONCORDANCE_N_INIT: Final = 3
"""MiniBatchKMeans initialisations: the 2017 default (scikit-learn ≥ 1.4 defaults to 1)."""

SPLITS: Final = ("validation", "test", "live")


@dataclass(frozen=True, eq=False)
class ConcordanceClusters:
    """The k-means clusters of a round's validation, test and live rows, fitted once.

    ``validation``, ``test`` and ``live`` hold one cluster label per row of that split, in
    the row order of the features they were fitted with; the submissions scored against
    them must give their probabilities in that same order. The fitting parameters are kept
    so the clustering can be reproduced (scikit-learn's version still matters).
    """

    validation: IntArray
    test: IntArray
    live: IntArray
    centers: FloatArray
    n_clusters: int = CONCORDANCE_CLUSTERS
    random_state: int = CONCORDANCE_RANDOM_STATE
    batch_size: int = CONCORDANCE_BATCH_SIZE
    n_init: int = CONCORDANCE_N_INIT

    @classmethod
    def fit(
        cls,
        features: pd.DataFrame | npt.ArrayLike,
        data_type: npt.ArrayLike,
        *,
        n_clusters: int = CONCORDANCE_CLUSTERS,
        random_state: int = CONCORDANCE_RANDOM_STATE,
        batch_size: int = CONCORDANCE_BATCH_SIZE,
        n_init: int = CONCORDANCE_N_INIT,
    ) -> ConcordanceClusters:
        """Fit MiniBatchKMeans on all rows (training plus tournament) and label the splits.

        ``data_type`` gives each row's split: rows marked ``"validation"``, ``"test"`` or
        ``"live"`` are assigned to clusters (in row order); any other value (e.g.
        ``"train"``) only takes part in the fit. Rows with a missing feature are left out
        of the fit (the reference dropped such training rows), but a split row needs every
        feature.
        """
        x = np.asarray(features, dtype=np.float64)
        kind = np.asarray(data_type).astype(str)
        if x.ndim != 2 or kind.ndim != 1 or len(kind) != x.shape[0]:
            raise ValueError("features must be (N, F) with one data_type label per row")
        complete = ~np.isnan(x).any(axis=1)
        split_rows = np.isin(kind, SPLITS)
        if (split_rows & ~complete).any():
            raise ValueError("validation, test and live rows need every feature (NaN found)")
        if complete.sum() < n_clusters:
            raise ValueError(
                f"need at least {n_clusters} complete rows to fit {n_clusters} clusters"
            )
        model = MiniBatchKMeans(
            n_clusters=n_clusters,
            random_state=random_state,
            batch_size=batch_size,
            n_init=n_init,
        )
        model.fit(x[complete])
        centers = np.asarray(model.cluster_centers_, dtype=np.float64)
        labels = {
            split: np.asarray(model.predict(x[kind == split]), dtype=np.int64) for split in SPLITS
        }
        return cls(
            validation=labels["validation"],
            test=labels["test"],
            live=labels["live"],
            centers=centers,
            n_clusters=n_clusters,
            random_state=random_state,
            batch_size=batch_size,
            n_init=n_init,
        )

    def counts(self) -> pd.DataFrame:
        """Rows per cluster (index) and split (columns)."""
        return pd.DataFrame(
            {
                split: np.bincount(labels, minlength=self.n_clusters)
                for split, labels in zip(SPLITS, self._labels(), strict=True)
            }
        ).rename_axis("cluster")

    def _labels(self) -> tuple[IntArray, IntArray, IntArray]:
        return self.validation, self.test, self.live

    def usable_clusters(self) -> list[int]:
        """Clusters with at least one row in each of validation, test and live."""
        present = [set(np.unique(labels).tolist()) for labels in self._labels()]
        return sorted(present[0] & present[1] & present[2])


@dataclass(frozen=True)
class ConcordanceResult:
    """A concordance verdict: mean over clusters of the max pairwise KS, vs the threshold.

    ``per_cluster_ks`` has one entry per cluster label 0..n_clusters−1, NaN for a cluster
    skipped because some split had no row in it (listed in ``skipped_clusters``).
    """

    concordant: bool
    score: float
    per_cluster_ks: tuple[float, ...]
    skipped_clusters: tuple[int, ...]
    threshold: float = CONCORDANCE_THRESHOLD


def _split_matrix(values: npt.ArrayLike, n_rows: int, name: str) -> FloatArray:
    p = _probability_matrix(values, name)
    if p.shape[0] != n_rows:
        raise ValueError(f"{name} has {p.shape[0]} rows, the clusters have {n_rows}")
    return p


def concordance_batch(
    clusters: ConcordanceClusters,
    validation: npt.ArrayLike,
    test: npt.ArrayLike,
    live: npt.ArrayLike,
    threshold: float = CONCORDANCE_THRESHOLD,
    chance: float | None = KS_CRITICAL_95,
) -> list[ConcordanceResult]:
    """Concordance of K submissions: each split is (rows of that split, K), row order as fitted.

    Per usable cluster, the KS statistics validation–test, validation–live and test–live
    of every submission are computed together; a submission is concordant when the mean
    over clusters of their maximum is below ``threshold``, or below what chance alone gives
    when that is higher. *Departure*: the reference's fixed 0.12 assumed live eras of
    thousands of rows; in a cluster, two splits of n and m rows drawn alike differ by more
    than ``chance``·√(1/n + 1/m) one time in twenty (``KS_CRITICAL_95``; 0.12 for
    n = m ≈ 256), so the verdict compares the mean with the larger of ``threshold`` and the
    clusters' mean chance level (each cluster's largest over its three pairs), recorded as
    the result's ``threshold``; ``chance=None`` judges by ``threshold`` alone, as the
    reference did. Raises ValueError when no cluster has rows in all three splits.
    """
    parts = (
        _split_matrix(validation, len(clusters.validation), "validation"),
        _split_matrix(test, len(clusters.test), "test"),
        _split_matrix(live, len(clusters.live), "live"),
    )
    k = parts[0].shape[1]
    if any(part.shape[1] != k for part in parts):
        raise ValueError("validation, test and live need the same number of submissions")
    usable = clusters.usable_clusters()
    if not usable:
        raise ValueError("no cluster has rows in all of validation, test and live")
    per_cluster = np.full((clusters.n_clusters, k), np.nan)
    by_chance = np.zeros(clusters.n_clusters)
    labels = clusters._labels()
    for c in usable:
        in_cluster = [part[label == c] for part, label in zip(parts, labels, strict=True)]
        pairs = ((0, 1), (0, 2), (2, 1))  # as the reference: val–test, val–live, live–test
        per_cluster[c] = np.max(
            [ks_statistic_paired(in_cluster[i], in_cluster[j]) for i, j in pairs], axis=0
        )
        sizes = [len(rows) for rows in in_cluster]
        by_chance[c] = max(math.sqrt(1 / sizes[i] + 1 / sizes[j]) for i, j in pairs)
    scores = per_cluster[usable].mean(axis=0)
    judged_by = threshold
    if chance is not None:
        judged_by = max(threshold, chance * float(by_chance[usable].mean()))
    skipped = tuple(c for c in range(clusters.n_clusters) if c not in usable)
    return [
        ConcordanceResult(
            concordant=bool(scores[j] < judged_by),
            score=float(scores[j]),
            per_cluster_ks=tuple(float(v) for v in per_cluster[:, j]),
            skipped_clusters=skipped,
            threshold=judged_by,
        )
        for j in range(k)
    ]


def concordance(
    clusters: ConcordanceClusters,
    validation: npt.ArrayLike,
    test: npt.ArrayLike,
    live: npt.ArrayLike,
    threshold: float = CONCORDANCE_THRESHOLD,
) -> ConcordanceResult:
    """Concordance of one submission's validation, test and live probabilities (1-D each)."""
    for name, values in (("validation", validation), ("test", test), ("live", live)):
        if np.ndim(values) != 1:
            raise ValueError(f"{name} must be 1-D for one submission; use concordance_batch")
    return concordance_batch(clusters, validation, test, live, threshold)[0]


# ---------------------------------------------------------------------------------------------
# The figures of one upload
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadChecks:
    """What a 2017 upload is told at once (validation log-loss, consistency) and what the
    operator alone keeps (``test_logloss``: feedback on the hidden test rows)."""

    validation_logloss: float
    consistency: ConsistencyResult
    test_logloss: float | None


def upload_checks(
    probabilities: pd.Series,
    rows: pd.DataFrame,
    threshold: float = CONSISTENCY_2018,
    benchmark: float = BENCHMARK_LOGLOSS,
) -> UploadChecks:
    """Validation log-loss and consistency, and the test log-loss, of one submission.

    ``probabilities``: by id, every tournament row. ``rows``: by id, the round's tournament
    rows with ``data_type``, ``era`` and the binary ``target`` of validation and test rows
    (the operator's id map). ``test_logloss`` is None when no test row has a target.

    Where ``rows`` has a ``benchmark`` column (the benchmark models' probabilities) filled on
    every validation row, consistency counts the eras in which the submission's log-loss is
    below the benchmark models' in that era; otherwise every era is compared with
    ``benchmark`` (ln 2).
    """
    validation = rows[rows["data_type"] == "validation"]
    if validation.empty or validation["target"].isna().any():
        raise ValueError("every validation row needs its target")
    p = probabilities.reindex(validation.index)
    if p.isna().any():
        raise ValueError("the probabilities miss validation rows")
    targets = validation["target"].to_numpy(np.int64)
    eras = validation["era"].to_numpy()
    by_era = per_era_logloss(p.to_numpy(np.float64), targets, eras)
    test = rows[(rows["data_type"] == "test") & rows["target"].notna()]
    test_p = probabilities.reindex(test.index)
    if test_p.isna().any():
        raise ValueError("the probabilities miss test rows")
    test_targets = test["target"].to_numpy(np.int64)
    against: Benchmark = benchmark
    if "benchmark" in rows and validation["benchmark"].notna().all():
        models = validation["benchmark"].to_numpy(np.float64)
        against = per_era_logloss(models, targets, eras).iloc[:, 0].to_numpy()
    return UploadChecks(
        validation_logloss=logloss(p.to_numpy(np.float64), targets),
        consistency=check_consistency(by_era.iloc[:, 0], threshold, against),
        test_logloss=(logloss(test_p.to_numpy(np.float64), test_targets) if len(test) else None),
    )
