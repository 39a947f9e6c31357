"""The stake-weighted meta model (SWMM), and the benchmark blend built the same way.

Each submission column is tie-kept ranked over the rows it has and Gaussianised with Φ⁻¹;
the meta model is the stake-weighted mean of those columns: Σ stake_k·g_k / Σ stake_k.

Missing rows (NaN): a submission is ranked over its present rows only, and its missing rows
count as 0 — the Gaussian median, i.e. a neutral vote — before weighting; the denominator
stays the total stake. So a row every staked submission lacks gets 0, and a partially missing
submission pulls its missing rows towards the middle in proportion to its stake.

Stakes must be finite and non-negative; zero-stake submissions are skipped; a zero total
stake raises ValueError.

The columns are summed in the order given, and float sums depend on their order: a round's
submissions come in their models' names' order (`tournament.scoring.scored_submissions`),
so the same round blends to the same floats in any database.

The weights a tournament blends by (its settings' ``"meta_model": {"weights": ...}``):

- ``"stake"`` (the default): each submission's stake at risk in the round;
- ``"stake_x_reputation"``: stake at risk × the model's trust, `stake_x_reputation_weights`:
  trust = min(1, max(0.1, reputation ÷ 0.02)), where the reputation is the model's mean final
  CORR over the rounds resolved within the tournament's `reputation_days` before the round
  closed; a model without such a round has the floor, 0.1. So a model whose CORR averages
  0.02 or more counts with its whole stake, one at or below a tenth of that (a random one,
  a new one) with a tenth of it, and no record ever gives more weight than the stake;
- ``"stake_x_test"`` (2017 tournaments): stake at risk × max(0, ln 2 − the submission's
  test-set log-loss), `stake_x_test_weights`: the operator's hidden-holdout record decides
  how much of each stake the blend trusts, a model no better than a coin on the test set
  counting for nothing. The test-set log-loss is the operator's alone; the weights are
  recorded with the meta model, so a replay reproduces the blend without recomputing them.
"""

from __future__ import annotations

import math
import threading

import numpy as np
import numpy.typing as npt
import pandas as pd

from crowdquant.scoring.align import check_unique_ids
from crowdquant.scoring.ranking import (
    FloatArray,
    column_rows,
    for_column_chunks,
    gaussianised_rows,
)


def checked_stakes(stakes: npt.ArrayLike, n_columns: int) -> FloatArray:
    """A (K,) float64 vector of finite, non-negative stakes with a positive total."""
    weights = np.asarray(stakes, dtype=np.float64)
    if weights.shape != (n_columns,):
        raise ValueError(f"stakes must have shape ({n_columns},), got {weights.shape}")
    if not np.isfinite(weights).all():
        raise ValueError("stakes must be finite numbers")
    if (weights < 0).any():
        raise ValueError("stakes must not be negative")
    if not weights.sum() > 0:
        raise ValueError("the total stake is zero: the meta model is undefined")
    return weights


def stake_weighted_meta_model(
    predictions: npt.ArrayLike,
    stakes: npt.ArrayLike,
    *,
    chunk_size: int = 256,
    workers: int | None = None,
) -> FloatArray:
    """The (N,) stake-weighted mean of Φ⁻¹(tie-kept rank) of each (N, K) prediction column.

    NaN predictions are allowed: see the module docstring for how they count.
    """
    matrix = np.asarray(predictions, dtype=np.float64)
    if matrix.ndim == 1:
        matrix = matrix[:, None]
    if matrix.ndim != 2:
        raise ValueError(f"predictions must be an (N, K) matrix, got shape {matrix.shape}")
    weights = checked_stakes(stakes, matrix.shape[1])
    staked = np.flatnonzero(weights > 0)
    if len(staked) < matrix.shape[1]:
        matrix, weights = matrix[:, staked], weights[staked]
    partial: dict[int, FloatArray] = {}
    lock = threading.Lock()

    def work(start: int, stop: int) -> None:
        gauss = gaussianised_rows(column_rows(matrix, start, stop))
        np.nan_to_num(gauss, copy=False, nan=0.0)
        result = weights[start:stop] @ gauss
        with lock:
            partial[start] = result

    for_column_chunks(matrix.shape[1], work, chunk_size, workers)
    total = np.zeros(matrix.shape[0], dtype=np.float64)
    for start in sorted(partial):  # a fixed order, so the result does not depend on threads
        total += partial[start]
    return np.asarray(total / weights.sum())


def benchmark_blend(
    benchmark_predictions: npt.ArrayLike,
    weights: npt.ArrayLike,
    *,
    chunk_size: int = 256,
    workers: int | None = None,
) -> FloatArray:
    """The benchmark meta model for BMC: the same stake-weighted Gaussian mean, over the
    benchmark models' predictions with their (stake) weights."""
    return stake_weighted_meta_model(
        benchmark_predictions, weights, chunk_size=chunk_size, workers=workers
    )


def meta_model(predictions: pd.DataFrame, stakes: pd.Series) -> pd.Series:
    """The stake-weighted meta model of a frame of submissions (ids × submission names).

    `stakes` is indexed by submission name; columns without a stake weigh 0, and a stake for
    a submission missing from `predictions` is refused. Duplicate ids raise AlignmentError.
    """
    check_unique_ids(predictions, "predictions")
    check_unique_ids(stakes, "stakes")
    unknown = stakes.index.difference(predictions.columns)
    if len(unknown):
        raise ValueError(f"stakes name {len(unknown)} unknown submission(s), e.g. {unknown[0]!r}")
    weights = stakes.reindex(predictions.columns).fillna(0.0).to_numpy(dtype=np.float64)
    values = stake_weighted_meta_model(predictions.to_numpy(dtype=np.float64), weights)
    return pd.Series(values, index=predictions.index, name="meta_model")


STAKE_WEIGHTS = "stake"
STAKE_X_REPUTATION_WEIGHTS = "stake_x_reputation"
STAKE_X_TEST_WEIGHTS = "stake_x_test"
META_MODEL_WEIGHTS = (STAKE_WEIGHTS, STAKE_X_REPUTATION_WEIGHTS, STAKE_X_TEST_WEIGHTS)
"""The weightings a tournament's settings may choose for its meta model."""
DEFAULT_META_MODEL_WEIGHTS = STAKE_WEIGHTS
"""The weighting of a tournament whose settings choose none."""

FULL_TRUST_CORR = 0.02
"""The CORR reputation at and above which a model's whole stake counts."""
TRUST_FLOOR = 0.1
"""The share of its stake that counts for a model with no (or a poor) record."""


def reputation_trust(
    reputation: npt.ArrayLike, *, full: float = FULL_TRUST_CORR, floor: float = TRUST_FLOOR
) -> FloatArray:
    """Per model: min(1, max(floor, reputation ÷ full)); a missing (NaN) reputation gives
    the floor. Bounded in [floor, 1] and non-decreasing in the reputation."""
    if not (full > 0 and 0 < floor <= 1):
        raise ValueError("the full-trust CORR must be positive and the floor in (0, 1]")
    values = np.asarray(reputation, dtype=np.float64)
    if np.isinf(values).any():
        raise ValueError("reputations must be finite numbers (or NaN: no record)")
    trust = np.clip(np.nan_to_num(values / full, nan=floor), floor, 1.0)
    return np.asarray(trust, dtype=np.float64)


def stake_x_reputation_weights(stakes: npt.ArrayLike, reputation: npt.ArrayLike) -> FloatArray:
    """Per submission: stake × `reputation_trust` of its model's CORR reputation (NaN: no
    record). Stakes must be finite and non-negative; the total is positive whenever the
    stakes' is."""
    weights = np.asarray(stakes, dtype=np.float64)
    reputations = np.asarray(reputation, dtype=np.float64)
    if weights.ndim != 1 or reputations.shape != weights.shape:
        raise ValueError(
            f"stakes and reputations must be (K,) alike, got {weights.shape}, {reputations.shape}"
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("stakes must be finite and not negative")
    return np.asarray(weights * reputation_trust(reputations), dtype=np.float64)


def stake_x_test_weights(stakes: npt.ArrayLike, test_logloss: npt.ArrayLike) -> FloatArray:
    """Per submission: stake × max(0, ln 2 − test-set log-loss); a missing (NaN) log-loss
    weighs 0. Stakes must be finite and non-negative (the total may be zero here)."""
    weights = np.asarray(stakes, dtype=np.float64)
    losses = np.asarray(test_logloss, dtype=np.float64)
    if weights.ndim != 1 or losses.shape != weights.shape:
        raise ValueError(
            f"stakes and test log-losses must be (K,) alike, got {weights.shape}, {losses.shape}"
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("stakes must be finite and not negative")
    edge = np.where(np.isnan(losses), 0.0, np.maximum(0.0, math.log(2) - losses))
    return np.asarray(weights * edge, dtype=np.float64)


def blend_concentration(weights: npt.ArrayLike) -> tuple[float, float]:
    """How few members a blend rests on: its effective number of members, (Σw)² ÷ Σw² (n for
    n equal weights, 1 where one member holds all the weight), and its largest weight's share
    of the total; (NaN, NaN) without weight. Weights must be finite and non-negative. They
    are summed in ascending order: the same weights in any order give the same floats."""
    found = np.asarray(weights, dtype=np.float64)
    if found.ndim != 1 or not np.isfinite(found).all() or (found < 0).any():
        raise ValueError("weights must be a (K,) vector of finite, non-negative numbers")
    found = np.sort(found)
    total = float(found.sum())
    if not total > 0:
        return math.nan, math.nan
    shares = found / total
    return float(1.0 / np.square(shares).sum()), float(shares.max())
