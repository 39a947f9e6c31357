"""The stake-weighted meta model and the benchmark blend."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.align import AlignmentError
from crowdquant.scoring.metamodel import (
    benchmark_blend,
    blend_concentration,
    meta_model,
    reputation_trust,
    stake_weighted_meta_model,
    stake_x_reputation_weights,
)


def make_predictions(seed: int, n: int = 200, k: int = 6) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ids = sorted(f"n{x:012x}" for x in rng.choice(2**40, n, replace=False))
    values = np.round(rng.random((n, k)), 2)
    return pd.DataFrame(values, index=ids, columns=[f"model_{i}" for i in range(k)])


def reference_meta_model(predictions: pd.DataFrame, stakes: pd.Series) -> pd.Series:
    """numerai-tools' pieces: Gaussianised ranks (NaN → 0, the Gaussian median), stake_weight."""
    gauss = nt.gaussian(nt.tie_kept_rank(predictions)).fillna(0.0)
    return nt.stake_weight(gauss, stakes)


def test_matches_numerai_tools_stake_weight_of_gaussianised_ranks() -> None:
    predictions = make_predictions(0)
    stakes = pd.Series([1.0, 5.0, 0.5, 2.0, 0.0, 3.0], index=predictions.columns)
    ours = meta_model(predictions, stakes)
    assert ours.index.equals(predictions.index)
    np.testing.assert_allclose(ours, reference_meta_model(predictions, stakes), atol=1e-12)


def test_missing_rows_are_ranked_over_present_rows_and_count_as_zero() -> None:
    predictions = make_predictions(1)
    predictions.iloc[:20, 0] = np.nan
    predictions.iloc[10:15, 3] = np.nan
    stakes = pd.Series([2.0, 1.0, 1.0, 4.0, 1.0, 1.0], index=predictions.columns)
    ours = meta_model(predictions, stakes)
    np.testing.assert_allclose(ours, reference_meta_model(predictions, stakes), atol=1e-12)
    alone = stake_weighted_meta_model(predictions.to_numpy()[:, :1], [1.0])
    assert (alone[:20] == 0).all()
    np.testing.assert_allclose(
        alone[20:], nt.gaussian(nt.tie_kept_rank(predictions.iloc[20:, :1])).iloc[:, 0]
    )


def test_stake_checks() -> None:
    values = make_predictions(2).to_numpy()
    with pytest.raises(ValueError, match="total stake is zero"):
        stake_weighted_meta_model(values, np.zeros(6))
    with pytest.raises(ValueError, match="negative"):
        stake_weighted_meta_model(values, [1, 1, 1, 1, 1, -1])
    with pytest.raises(ValueError, match="finite"):
        stake_weighted_meta_model(values, [1, 1, 1, 1, 1, np.nan])
    with pytest.raises(ValueError, match="shape"):
        stake_weighted_meta_model(values, [1, 1])


def test_unstaked_submissions_are_ignored_even_if_empty() -> None:
    predictions = make_predictions(3)
    predictions["empty"] = np.nan
    stakes = pd.Series({"model_0": 1.0, "model_2": 3.0, "empty": 0.0})
    expected = reference_meta_model(predictions[["model_0", "model_2"]], stakes.iloc[:2])
    np.testing.assert_allclose(meta_model(predictions, stakes), expected, atol=1e-12)


def test_frame_wrapper_checks() -> None:
    predictions = make_predictions(4)
    with pytest.raises(ValueError, match="unknown submission"):
        meta_model(predictions, pd.Series({"ghost": 1.0}))
    doubled = pd.concat([predictions, predictions.iloc[:1]])
    with pytest.raises(AlignmentError, match="predictions has 1 duplicate id"):
        meta_model(doubled, pd.Series({"model_0": 1.0}))


def test_benchmark_blend_is_the_same_function_and_chunking_is_stable() -> None:
    values = make_predictions(5, k=11).to_numpy()
    weights = np.linspace(0.5, 2.0, 11)
    whole = stake_weighted_meta_model(values, weights)
    np.testing.assert_array_equal(benchmark_blend(values, weights), whole)
    chunked = stake_weighted_meta_model(values, weights, chunk_size=3, workers=3)
    np.testing.assert_allclose(chunked, whole, atol=1e-15)


def test_reputation_trust_is_bounded_and_grows_with_the_reputation() -> None:
    reputation = [np.nan, -0.05, 0.0, 0.001, 0.002, 0.01, 0.02, 0.5]
    assert reputation_trust(reputation) == pytest.approx([0.1, 0.1, 0.1, 0.1, 0.1, 0.5, 1, 1])
    grid = np.linspace(-0.1, 0.1, 201)
    trust = reputation_trust(grid)
    assert (np.diff(trust) >= 0).all() and trust.min() == 0.1 and trust.max() == 1.0
    assert reputation_trust([0.01], full=0.04, floor=0.5) == pytest.approx([0.5])
    for bad in ({"full": 0.0}, {"floor": 0.0}, {"floor": 1.5}):
        with pytest.raises(ValueError, match="full-trust CORR"):
            reputation_trust([0.01], **bad)
    with pytest.raises(ValueError, match="finite"):
        reputation_trust([np.inf])


def test_stake_x_reputation_weights() -> None:
    weights = stake_x_reputation_weights([100.0, 300.0, 200.0, 0.0], [0.03, 0.01, np.nan, 0.05])
    assert weights == pytest.approx([100.0, 150.0, 20.0, 0.0])
    # a record never gives more weight than the stake, nor less than a tenth of it
    stakes = np.array([5.0, 7.0, 11.0])
    weights = stake_x_reputation_weights(stakes, [-1.0, 0.0, 1.0])
    assert (weights <= stakes).all() and (weights >= 0.1 * stakes).all()
    for stakes, reputation, message in (
        ([-1.0], [0.01], "not negative"),
        ([np.nan], [0.01], "finite"),
        ([1.0, 2.0], [0.01], "alike"),
    ):
        with pytest.raises(ValueError, match=message):
            stake_x_reputation_weights(stakes, reputation)


# --- blend concentration ------------------------------------------------------------------------


def test_equal_weights_count_every_member_and_share_the_weight_equally() -> None:
    members, top = blend_concentration([5.0, 5.0, 5.0, 5.0])
    assert members == pytest.approx(4.0)
    assert top == pytest.approx(0.25)


def test_one_member_holding_nearly_all_the_weight_counts_as_about_one() -> None:
    members, top = blend_concentration([96.0, 1.0, 1.0, 1.0, 1.0, 0.0])
    assert members == pytest.approx(100**2 / (96**2 + 4))
    assert 1.0 < members < 1.1
    assert top == pytest.approx(0.96)


def test_a_blend_without_weight_has_no_concentration() -> None:
    members, top = blend_concentration([0.0, 0.0])
    assert np.isnan(members) and np.isnan(top)
    members, top = blend_concentration([])
    assert np.isnan(members) and np.isnan(top)


@pytest.mark.parametrize("weights", [[1.0, -0.5], [1.0, np.nan], [[1.0, 2.0]]])
def test_weights_that_are_no_weights_are_refused(weights: list[object]) -> None:
    with pytest.raises(ValueError, match="weights must be"):
        blend_concentration(weights)


def test_the_same_weights_in_any_order_give_the_same_floats() -> None:
    weights = np.random.default_rng(5).lognormal(0, 3, 200)  # stakes of many sizes
    first = blend_concentration(weights)
    for seed in range(5):
        assert blend_concentration(np.random.default_rng(seed).permutation(weights)) == first
