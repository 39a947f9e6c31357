import numpy as np
import pytest

from crowdquant.data.anonymise import (
    equal_count_bins,
    ids_from_prf,
    mix64,
    mixing_matrix,
    proportion_bins,
    published_feature_names,
    row_prf,
    subsample,
)
from crowdquant.data.keys import OperatorKeys

KEYS = OperatorKeys(bytes(range(32)))


def _tiebreak(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, size=shape, dtype=np.uint64)


@pytest.mark.parametrize("n", [5, 17, 20, 101, 1000])
def test_equal_count_bins_balance_every_era(n: int) -> None:
    values = np.random.default_rng(n).standard_normal((4, n))
    include = np.ones_like(values, dtype=bool)
    bins = equal_count_bins(values, include, _tiebreak(values.shape), missing_bin=2)
    for era in bins:
        counts = np.bincount(era, minlength=5)
        assert counts.max() - counts.min() <= 1
        assert counts.sum() == n


def test_bins_follow_value_order() -> None:
    values = np.arange(10.0)[None, :]
    bins = equal_count_bins(values, np.ones((1, 10), bool), _tiebreak((1, 10)), missing_bin=2)
    assert bins.tolist() == [[0, 0, 1, 1, 2, 2, 3, 3, 4, 4]]


def test_missing_and_excluded_cells_are_explicit() -> None:
    values = np.array([[np.nan, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    include = np.array([[True, True, True, True, True, True, False]])
    bins = equal_count_bins(values, include, _tiebreak(values.shape), missing_bin=3)
    assert bins[0, 0] == 3  # missing → the configured bin
    assert bins[0, -1] == -1  # not a row of the era
    assert sorted(bins[0, 1:6].tolist()) == [0, 1, 2, 3, 4]


def test_ties_are_broken_by_the_key_not_by_row_order() -> None:
    values = np.zeros((1, 50))
    include = np.ones((1, 50), bool)
    tiebreak = _tiebreak((1, 50), seed=1)
    bins = equal_count_bins(values, include, tiebreak, missing_bin=2)
    order = np.random.default_rng(2).permutation(50)
    shuffled = equal_count_bins(values[:, order], include, tiebreak[:, order], missing_bin=2)
    assert (shuffled == bins[:, order]).all()  # same rows, same bins, whatever the order
    other_key = equal_count_bins(values, include, _tiebreak((1, 50), seed=3), missing_bin=2)
    assert (other_key != bins).any()
    assert not (np.diff(bins[0]) >= 0).all()  # not simply bins by position


@pytest.mark.parametrize(
    ("n", "expected"), [(20, [1, 4, 10, 4, 1]), (1000, [50, 200, 500, 200, 50])]
)
def test_proportion_bins_have_the_target_shape(n: int, expected: list[int]) -> None:
    values = np.random.default_rng(0).standard_normal((3, n))
    binned = proportion_bins(
        values, np.ones_like(values, bool), _tiebreak(values.shape), (0.05, 0.2, 0.5, 0.2, 0.05)
    )
    for era in binned:
        assert np.unique(era, return_counts=True)[1].tolist() == expected
        assert set(np.unique(era)) == {0.0, 0.25, 0.5, 0.75, 1.0}


def test_ids_are_n_plus_15_hex_and_keyed() -> None:
    include = np.ones((2, 3), bool)
    prf = row_prf(b"k" * 32, ["A", "B", "C"], ["2020-01-03", "2020-01-10"], include)
    ids = ids_from_prf(prf[..., 0].ravel())
    assert all(len(i) == 16 and i[0] == "n" and int(i[1:], 16) >= 0 for i in ids)
    assert len(set(ids)) == 6  # a stock's id differs in every era
    other = ids_from_prf(
        row_prf(b"j" * 32, ["A", "B", "C"], ["2020-01-03", "2020-01-10"], include)[..., 0].ravel()
    )
    assert set(ids).isdisjoint(other)  # a new key (round) gives new ids


def test_subsample_keeps_a_fraction_in_range() -> None:
    include = np.ones((50, 400), bool)
    kept = subsample(include, _tiebreak(include.shape), KEYS, "scope", (0.85, 0.95))
    shares = kept.sum(axis=1) / 400
    assert shares.min() >= 0.85 and shares.max() <= 0.95 + 1 / 400
    assert len(set(kept.sum(axis=1))) > 1  # the share itself varies per era


def test_mixing_matrix_is_orthogonal_and_keyed() -> None:
    q = mixing_matrix(KEYS, "momentum", 8)
    assert np.allclose(q @ q.T, np.eye(8))
    assert np.array_equal(q, mixing_matrix(KEYS, "momentum", 8))
    assert not np.allclose(q, mixing_matrix(OperatorKeys(bytes(32)), "momentum", 8))


def test_feature_names_are_meaningless_unique_and_keyed() -> None:
    real = [f"momentum_{h}" for h in range(200)]
    names = published_feature_names(KEYS, real)
    assert len(set(names)) == 200
    assert all(n.startswith("feature_") and "momentum" not in n for n in names)
    assert names != published_feature_names(OperatorKeys(bytes(32)), real)


def test_mix64_depends_on_salt() -> None:
    x = np.arange(100, dtype=np.uint64)
    assert np.array_equal(mix64(x, 7), mix64(x, 7))
    assert not np.array_equal(mix64(x, 7), mix64(x, 8))
