"""The 2017-era rules: log-loss, consistency, originality and concordance."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.special import ndtr
from scipy.stats import ks_2samp
from sklearn.metrics import log_loss

from crowdquant.scoring.rules2017 import (
    BENCHMARK_LOGLOSS,
    BENCHMARK_LOGLOSS_2019,
    CONCORDANCE_THRESHOLD,
    CONSISTENCY_2017,
    CONSISTENCY_2018,
    ConcordanceClusters,
    OriginalityReason,
    OriginalityThresholds,
    check_consistency,
    concordance,
    concordance_batch,
    consistency,
    consistency_batch,
    is_consistent,
    ks_statistic,
    ks_statistic_many,
    ks_statistic_paired,
    logloss,
    logloss_batch,
    originality,
    originality_round,
    per_era_logloss,
    upload_checks,
)

# ---------------------------------------------------------------------------------------------
# log-loss
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_logloss_matches_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, k = int(rng.integers(20, 500)), 6
    targets = rng.integers(0, 2, n)
    targets[:2] = (0, 1)  # both classes, as sklearn needs
    probabilities = rng.uniform(0.001, 0.999, (n, k))
    batch = logloss_batch(probabilities, targets)
    assert batch.shape == (k,)
    for j in range(k):
        expected = log_loss(targets, probabilities[:, j])
        assert batch[j] == pytest.approx(expected, abs=1e-12)
        assert logloss(probabilities[:, j], targets) == pytest.approx(expected, abs=1e-12)


def test_logloss_hand_made() -> None:
    targets = np.array([0, 1, 1, 0, 1])
    assert logloss(np.full(5, 0.5), targets) == pytest.approx(math.log(2), abs=1e-15)
    assert abs(BENCHMARK_LOGLOSS - 0.693147) < 1e-6
    assert logloss(targets.astype(float), targets) == pytest.approx(-math.log(1 - 1e-15))
    # a certain wrong answer is clipped to eps = 1e-15, so the loss is finite
    assert logloss([1.0], [0]) == pytest.approx(-math.log(1e-15))
    # sklearn clips at the float64 epsilon; passing it reproduces sklearn on 0 and 1 exactly
    edge = np.array([0.0, 1.0, 1.0, 0.0, 0.3])
    eps = float(np.finfo(np.float64).eps)
    assert logloss(edge, targets, eps=eps) == pytest.approx(log_loss(targets, edge), rel=1e-12)


def test_per_era_logloss() -> None:
    rng = np.random.default_rng(7)
    n = 300
    eras = rng.choice(["era3", "era1", "era2"], n)
    targets = rng.integers(0, 2, n)
    frame = pd.DataFrame(rng.uniform(0.05, 0.95, (n, 3)), columns=["a", "b", "c"])
    table = per_era_logloss(frame, targets, eras)
    assert list(table.index) == ["era1", "era2", "era3"] and table.index.name == "era"
    assert list(table.columns) == ["a", "b", "c"]
    for era in table.index:
        rows = eras == era
        for col in table.columns:
            expected = log_loss(targets[rows], frame[col].to_numpy()[rows])
            assert table.loc[era, col] == pytest.approx(expected, abs=1e-12)
    series = per_era_logloss(frame["b"], targets, eras)
    assert isinstance(series, pd.Series) and series.name == "b"
    np.testing.assert_allclose(series.to_numpy(), table["b"].to_numpy(), atol=1e-15)
    plain = per_era_logloss(frame.to_numpy(), targets, eras)
    assert np.array_equal(plain.columns, [0, 1, 2])


@pytest.mark.parametrize(
    ("probabilities", "targets"),
    [
        ([0.5, np.nan], [0, 1]),
        ([0.5, 1.2], [0, 1]),
        ([0.5, 0.5], [0, 0.5]),
        ([0.5, 0.5], [0, np.nan]),
        ([0.5, 0.5], [0, 1, 1]),
    ],
)
def test_logloss_refuses_bad_input(probabilities: list[float], targets: list[float]) -> None:
    with pytest.raises(ValueError):
        logloss(probabilities, targets)


# ---------------------------------------------------------------------------------------------
# consistency
# ---------------------------------------------------------------------------------------------


def test_consistency_seven_of_twelve() -> None:
    era_losses = np.array([0.69] * 7 + [0.70] * 5)
    value = consistency(era_losses)
    assert value == pytest.approx(7 / 12)
    assert is_consistent(value, CONSISTENCY_2018)
    assert not is_consistent(value, CONSISTENCY_2017)
    result = check_consistency(era_losses, threshold=CONSISTENCY_2018, expected_eras=12)
    assert result.consistent and result.eras_below_benchmark == 7 and result.n_eras == 12
    assert result.threshold == 0.58 and result.benchmark == BENCHMARK_LOGLOSS
    assert not check_consistency(era_losses, threshold=CONSISTENCY_2017).consistent


def test_consistency_edges() -> None:
    assert is_consistent(consistency([0.6] * 9 + [0.8] * 3), CONSISTENCY_2017)  # 75 % ≥ 75 %
    # an era exactly at the benchmark is not below it
    assert consistency([BENCHMARK_LOGLOSS, 0.5]) == 0.5
    # the 2019 code's rounded benchmark judges the sliver [0.693, ln 2) differently
    assert consistency([0.6931]) == 1.0
    assert consistency([0.6931], benchmark=BENCHMARK_LOGLOSS_2019) == 0.0
    table = pd.DataFrame({"a": [0.6, 0.7, 0.6], "b": [0.8, 0.8, 0.6]})
    np.testing.assert_allclose(consistency_batch(table), [2 / 3, 1 / 3])
    with pytest.raises(ValueError, match="expected 12 eras"):
        check_consistency([0.6] * 11, expected_eras=12)
    with pytest.raises(ValueError):
        consistency([])
    with pytest.raises(ValueError):
        consistency([0.6, np.nan])


def test_consistency_from_per_era_logloss() -> None:
    rng = np.random.default_rng(3)
    eras = np.repeat(np.arange(12), 50)
    targets = rng.integers(0, 2, eras.size)
    good = np.where(targets == 1, 0.6, 0.4)  # better than 0.5 in every era
    bad = 1.0 - good
    table = per_era_logloss(np.column_stack([good, bad]), targets, eras)
    np.testing.assert_array_equal(consistency_batch(table), [1.0, 0.0])


# ---------------------------------------------------------------------------------------------
# KS statistic
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_ks_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = (int(v) for v in rng.integers(1, 80, 2))
    decimals = int(rng.integers(0, 3))  # coarse rounding makes many ties
    a = np.round(rng.random(n), decimals)
    b = np.round(rng.random(m) * rng.uniform(0.5, 1.5), decimals)
    assert ks_statistic(a, b) == pytest.approx(ks_2samp(a, b).statistic, abs=1e-12)
    many = np.round(rng.random((m, 5)), decimals)
    expected = [ks_2samp(a, many[:, j]).statistic for j in range(5)]
    np.testing.assert_allclose(ks_statistic_many(a, many), expected, atol=1e-12)
    left = np.round(rng.random((n, 5)), decimals)
    expected = [ks_2samp(left[:, j], many[:, j]).statistic for j in range(5)]
    np.testing.assert_allclose(ks_statistic_paired(left, many), expected, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# originality
# ---------------------------------------------------------------------------------------------

N = 5000


def _base(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.3, 0.7, N)


def _correlated_same_values(base: np.ndarray, rho: float, seed: int) -> np.ndarray:
    """The values of `base`, reassigned to rows by a Gaussian copula with correlation rho."""
    rng = np.random.default_rng(seed)
    z = ndtr(rng.standard_normal(N))  # uniform noise, independent of base
    ranks = np.argsort(np.argsort(base))
    noisy = rho * (ranks / N - 0.5) + math.sqrt(1 - rho**2) * (z - 0.5)
    out = np.empty(N)
    out[np.argsort(noisy)] = np.sort(base)
    return out


def test_exact_copy_is_correlated() -> None:
    base = _base()
    others = np.column_stack([base.copy(), _base(1)])
    result = originality(base, others)
    assert not result.original and result.reason is OriginalityReason.CORRELATED
    assert result.max_abs_correlation == pytest.approx(1.0)
    assert result.matched == 0 and result.compared_with == 2
    assert math.isnan(result.min_ks) and result.similar_count == 0
    # an anti-correlated copy is caught too (|ρ|)
    assert originality(base, 1.0 - base).reason is OriginalityReason.CORRELATED


def test_reshuffled_copy_is_an_exact_duplicate() -> None:
    base = _base()
    copy = _correlated_same_values(base, 0.9, seed=5)
    corr = np.corrcoef(base, copy)[0, 1]
    assert 0.8 < corr < 0.95  # passes the correlation step …
    result = originality(copy, base)
    assert result.max_abs_correlation == pytest.approx(corr)
    assert result.min_ks == 0.0  # … but has the very same values
    assert not result.original and result.reason is OriginalityReason.DUPLICATE
    assert result.matched == 0


def test_similar_distribution_counts_towards_max_similar_models() -> None:
    base = _base()
    copy = _correlated_same_values(base, 0.9, seed=5)
    top = np.argsort(copy)[-int(0.02 * N) :]
    copy[top] = 0.75  # 2 % of the mass moved above every value of base: KS = 0.02
    result = originality(copy, base)
    assert result.min_ks == pytest.approx(0.02)
    assert not result.original and result.reason is OriginalityReason.SIMILAR
    assert result.similar_count == 1
    relaxed = originality(copy, base, OriginalityThresholds(max_similar_models=2))
    assert relaxed.original and relaxed.reason is OriginalityReason.ORIGINAL
    assert relaxed.similar_count == 1 and relaxed.thresholds.max_similar_models == 2
    assert relaxed.matched is None


def test_independent_submission_is_original() -> None:
    rng = np.random.default_rng(11)
    others = np.column_stack(
        [rng.uniform(0.2, 0.6, N), np.clip(rng.normal(0.5, 0.05, N), 0, 1), rng.beta(2, 5, N)]
    )
    result = originality(_base(), others)
    assert result.original and result.reason is OriginalityReason.ORIGINAL
    assert result.max_abs_correlation < 0.1 and result.min_ks > 0.03
    assert result.similar_count == 0 and result.compared_with == 3
    assert result.thresholds == OriginalityThresholds()
    # no others at all: original
    alone = originality(_base(), np.empty((N, 0)))
    assert alone.original and alone.compared_with == 0 and math.isnan(alone.min_ks)


def test_constant_submissions() -> None:
    half = np.full(N, 0.5)
    result = originality(half, _base()[:, None])
    assert result.original and math.isnan(result.max_abs_correlation)  # no correlation step
    same = originality(half, np.full((N, 1), 0.5))
    assert not same.original and same.reason is OriginalityReason.DUPLICATE
    different = originality(half, np.full((N, 1), 0.6))
    assert different.original and different.min_ks == 1.0
    # a constant other does not make a non-constant submission fail the correlation step
    mixed = originality(_base(), np.column_stack([half, _base()]))
    assert mixed.reason is OriginalityReason.CORRELATED and mixed.matched == 1


def test_originality_round_order_and_owners() -> None:
    base = _base()
    rng = np.random.default_rng(4)
    other = rng.beta(2, 5, N)
    round_predictions = pd.DataFrame(
        {"first": base, "other": other, "copy": base.copy(), "copy_of_copy": base.copy()}
    )
    results = originality_round(round_predictions)
    assert [r.original for r in results] == [True, True, False, False]
    assert results[2].reason is OriginalityReason.CORRELATED and results[2].matched == 0
    # the rejected copy is no longer compared against: the copy of it matches column 0 only
    assert results[3].compared_with == 2 and results[3].matched == 0
    # the same owner's submissions are not compared with each other
    owned = originality_round(round_predictions, owners=["ann", "bob", "ann", "cat"])
    assert [r.original for r in owned] == [True, True, True, False]
    assert owned[2].compared_with == 1
    # agrees with the one-submission function on the same comparisons
    single = originality(other, base[:, None])
    assert results[1].max_abs_correlation == pytest.approx(single.max_abs_correlation, abs=1e-12)
    assert replace(results[1], max_abs_correlation=0.0) == replace(single, max_abs_correlation=0.0)


def test_originality_round_matches_pairwise() -> None:
    rng = np.random.default_rng(9)
    n, k = 400, 12
    shapes = rng.uniform(1, 6, (2, k))
    matrix = rng.beta(shapes[0], shapes[1], (n, k))
    matrix[:, 5] = matrix[:, 2] + rng.normal(0, 0.01, n).clip(-0.02, 0.02)
    results = originality_round(np.clip(matrix, 0, 1))
    kept: list[int] = []
    for col, result in enumerate(results):
        expected = originality(np.clip(matrix[:, col], 0, 1), np.clip(matrix[:, kept], 0, 1))
        assert result.original == expected.original and result.reason == expected.reason
        assert result.similar_count == expected.similar_count
        if expected.matched is not None:
            assert result.matched == kept[expected.matched]
        if result.original:
            kept.append(col)
    assert not results[5].original


# ---------------------------------------------------------------------------------------------
# concordance
# ---------------------------------------------------------------------------------------------


def _round_features(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    sizes = {"train": 3000, "validation": 1500, "test": 1500, "live": 1500}
    centres = rng.uniform(0, 1, (5, 6))
    kinds = np.concatenate([np.full(size, name) for name, size in sizes.items()])
    which = rng.integers(0, 5, kinds.size)
    features = centres[which] + rng.normal(0, 0.05, (kinds.size, 6))
    return features, kinds


@pytest.fixture(scope="module")
def round_data() -> tuple[np.ndarray, np.ndarray, ConcordanceClusters]:
    features, kinds = _round_features()
    return features, kinds, ConcordanceClusters.fit(features, kinds)


def _model(features: np.ndarray, seed: int) -> np.ndarray:
    """A smooth function of the features plus noise: the same law on every split."""
    rng = np.random.default_rng(seed)
    score = features @ np.linspace(-1, 1, features.shape[1]) + rng.normal(0, 0.1, len(features))
    return np.asarray(ndtr(score))


def test_concordant_when_splits_share_a_distribution(
    round_data: tuple[np.ndarray, np.ndarray, ConcordanceClusters],
) -> None:
    features, kinds, clusters = round_data
    assert clusters.usable_clusters() == [0, 1, 2, 3, 4]
    assert clusters.counts().sum().tolist() == [1500, 1500, 1500]
    p = _model(features, seed=1)
    result = concordance(clusters, p[kinds == "validation"], p[kinds == "test"], p[kinds == "live"])
    assert result.concordant and result.score < CONCORDANCE_THRESHOLD
    assert result.threshold == CONCORDANCE_THRESHOLD and result.skipped_clusters == ()
    assert len(result.per_cluster_ks) == 5
    assert result.score == pytest.approx(np.mean(result.per_cluster_ks))
    # each cluster's value is the max of the three pairwise scipy KS statistics
    v, t, live = p[kinds == "validation"], p[kinds == "test"], p[kinds == "live"]
    for c in range(5):
        parts = (v[clusters.validation == c], t[clusters.test == c], live[clusters.live == c])
        expected = max(
            ks_2samp(parts[0], parts[1]).statistic,
            ks_2samp(parts[0], parts[2]).statistic,
            ks_2samp(parts[2], parts[1]).statistic,
        )
        assert result.per_cluster_ks[c] == pytest.approx(expected, abs=1e-12)


def test_shifted_live_is_not_concordant(
    round_data: tuple[np.ndarray, np.ndarray, ConcordanceClusters],
) -> None:
    features, kinds, clusters = round_data
    p = _model(features, seed=1)
    good = p
    shifted = np.where(kinds == "live", np.clip(p + 0.1, 0, 1), p)
    validation = np.column_stack([good, shifted])[kinds == "validation"]
    test = np.column_stack([good, shifted])[kinds == "test"]
    live = np.column_stack([good, shifted])[kinds == "live"]
    results = concordance_batch(clusters, validation, test, live)
    assert [r.concordant for r in results] == [True, False]
    assert results[1].score > results[1].threshold >= CONCORDANCE_THRESHOLD
    single = concordance(clusters, shifted[kinds == "validation"], test[:, 1], live[:, 1])
    assert single == results[1]
    strict = concordance_batch(clusters, validation, test, live, threshold=1e-3, chance=None)
    assert not strict[0].concordant and strict[0].threshold == 1e-3


def test_clusters_are_deterministic(
    round_data: tuple[np.ndarray, np.ndarray, ConcordanceClusters],
) -> None:
    features, kinds, clusters = round_data
    again = ConcordanceClusters.fit(features, kinds)
    for split in ("validation", "test", "live"):
        np.testing.assert_array_equal(getattr(again, split), getattr(clusters, split))
    np.testing.assert_array_equal(again.centers, clusters.centers)
    assert (again.n_clusters, again.random_state) == (5, 1337)
    assert len(clusters.validation) == 1500 and clusters.validation.dtype == np.int64


def test_cluster_without_live_rows_is_skipped() -> None:
    rng = np.random.default_rng(2)
    clusters = ConcordanceClusters(
        validation=np.repeat([0, 1, 2], 100),
        test=np.repeat([0, 1, 2], 100),
        live=np.repeat([0, 2], 100),  # nobody live in cluster 1
        centers=np.zeros((3, 1)),
        n_clusters=3,
    )
    result = concordance(clusters, rng.random(300), rng.random(300), rng.random(200))
    assert result.skipped_clusters == (1,)
    assert math.isnan(result.per_cluster_ks[1])
    assert result.score == pytest.approx(
        np.mean([result.per_cluster_ks[0], result.per_cluster_ks[2]])
    )
    with pytest.raises(ValueError, match="rows"):
        concordance(clusters, rng.random(300), rng.random(300), rng.random(201))
    empty_live = ConcordanceClusters(
        validation=np.zeros(3, dtype=np.int64),
        test=np.zeros(3, dtype=np.int64),
        live=np.zeros(0, dtype=np.int64),
        centers=np.zeros((1, 1)),
        n_clusters=1,
    )
    with pytest.raises(ValueError, match="no cluster"):
        concordance(empty_live, rng.random(3), rng.random(3), np.empty(0))


def test_fit_refuses_missing_split_features() -> None:
    features, kinds = _round_features()
    training_gap = features.copy()
    training_gap[0, 0] = np.nan  # a training row: left out of the fit
    ConcordanceClusters.fit(training_gap, kinds)
    live_gap = features.copy()
    live_gap[np.flatnonzero(kinds == "live")[0], 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ConcordanceClusters.fit(live_gap, kinds)


def test_a_small_live_era_is_judged_against_what_chance_gives() -> None:
    rng = np.random.default_rng(7)
    sizes = {"validation": 2_000, "test": 2_000, "live": 40}  # a live era of 40 rows
    labels = {split: rng.integers(0, 5, n) for split, n in sizes.items()}
    clusters = ConcordanceClusters(**labels, centers=np.empty((5, 0)))
    alike = {split: rng.uniform(size=n) for split, n in sizes.items()}
    judged = concordance(clusters, alike["validation"], alike["test"], alike["live"])
    assert judged.concordant and judged.threshold > CONCORDANCE_THRESHOLD
    # the reference's fixed threshold fails a live era drawn like the rest, by chance alone
    fixed = concordance_batch(
        clusters, alike["validation"], alike["test"], alike["live"], chance=None
    )[0]
    assert not fixed.concordant and fixed.score == judged.score
    shifted = np.clip(alike["live"] + 0.4, 0, 1)
    assert not concordance(clusters, alike["validation"], alike["test"], shifted).concordant


def test_consistency_against_a_benchmark_per_era() -> None:
    losses = np.array([0.68, 0.69, 0.70, 0.66])
    per_era = np.array([0.67, 0.70, 0.71, 0.66])  # beaten in eras 2 and 3; era 4 is a tie
    result = check_consistency(losses, threshold=0.5, benchmark=per_era)
    assert (result.eras_below_benchmark, result.consistency, result.consistent) == (2, 0.5, True)
    assert result.benchmark == (0.67, 0.70, 0.71, 0.66)
    assert check_consistency(losses).benchmark == math.log(2)
    with pytest.raises(ValueError, match="one log-loss per era"):
        check_consistency(losses, benchmark=per_era[:3])


def test_upload_checks_compare_each_era_with_the_benchmark_models() -> None:
    rng = np.random.default_rng(3)
    eras = np.repeat(["era1", "era2", "era3", "era4"], 200)
    target = rng.integers(0, 2, len(eras))
    rows = pd.DataFrame(
        {"data_type": "validation", "era": eras, "target": target},
        index=pd.Index([f"n{i}" for i in range(len(eras))], name="id"),
    )
    # a slightly skilled submission: better than ln 2 in every era
    own = pd.Series(np.where(target == 1, 0.55, 0.45), index=rows.index)
    assert upload_checks(own, rows).consistency.consistency == 1.0
    # benchmark models that know more beat it in every era, unless their column is incomplete
    rows["benchmark"] = np.where(target == 1, 0.6, 0.4)
    against_models = upload_checks(own, rows).consistency
    assert against_models.consistency == 0.0
    assert isinstance(against_models.benchmark, tuple) and len(against_models.benchmark) == 4
    rows.loc["n0", "benchmark"] = np.nan
    assert upload_checks(own, rows).consistency.benchmark == math.log(2)
