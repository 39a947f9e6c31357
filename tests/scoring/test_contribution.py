"""MMC / BMC: parity with numerai-tools' correlation_contribution, and the departures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.align import AlignmentError
from crowdquant.scoring.contribution import (
    contribution_targets,
    correlation_contribution,
    mmc_scores,
)

BINS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
TOL = 1e-9


def make_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"n{x:012x}" for x in rng.choice(2**40, n, replace=False)])


def make_inputs(
    seed: int, n: int = 300, k: int = 5, decimals: int | None = 2
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    ids = make_ids(rng, n)
    target = rng.choice(BINS, n, p=[0.1, 0.2, 0.4, 0.2, 0.1])
    values = 0.3 * (target[:, None] - 0.5) + rng.random((n, k))
    if decimals is not None:
        values = np.round(values, decimals)
    predictions = pd.DataFrame(values, index=ids, columns=[f"model_{i}" for i in range(k)])
    meta = pd.Series(values.mean(axis=1) + rng.normal(0, 0.1, n), ids, name="meta")
    if decimals is not None:
        meta = meta.round(decimals)
    return predictions, meta, pd.Series(target, ids, name="target")


def assert_parity(ours: pd.Series, reference: pd.Series) -> None:
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_parity_with_ties_and_unsorted_ids(seed: int, decimals: int | None) -> None:
    predictions, meta, targets = make_inputs(seed, decimals=decimals)
    assert_parity(
        correlation_contribution(predictions, meta, targets),
        nt.correlation_contribution(predictions, meta, targets),
    )


def test_raw_returns_are_not_scaled() -> None:
    predictions, meta, targets = make_inputs(5)
    rng = np.random.default_rng(5)
    returns = (targets - 0.5) * 0.1 + pd.Series(rng.normal(0, 0.05, len(targets)), targets.index)
    assert not ((returns >= 0) & (returns <= 1)).all()
    assert_parity(
        correlation_contribution(predictions, meta, returns),
        nt.correlation_contribution(predictions, meta, returns),
    )
    np.testing.assert_allclose(contribution_targets([0.0, 1.0]), [-2.0, 2.0])
    np.testing.assert_allclose(contribution_targets([-1.0, 1.0]), [-1.0, 1.0])


@pytest.mark.parametrize("seed", range(3))
def test_parity_with_nans_missing_and_extra_ids(seed: int) -> None:
    rng = np.random.default_rng(200 + seed)
    predictions, meta, targets = make_inputs(seed, n=400)
    predictions.iloc[rng.choice(400, 12, replace=False), 2] = np.nan
    meta.iloc[rng.choice(400, 8, replace=False)] = np.nan
    meta = meta.drop(meta.index[rng.choice(400, 10, replace=False)])
    targets.iloc[rng.choice(400, 10, replace=False)] = np.nan
    extra = pd.Series(rng.choice(BINS, 25), make_ids(rng, 25))
    targets = pd.concat([targets, extra]).sample(frac=1.0, random_state=seed).rename("target")
    assert_parity(
        correlation_contribution(predictions, meta, targets),
        nt.correlation_contribution(predictions, meta, targets),
    )


def test_pairwise_alignment_allows_losses_to_compound() -> None:
    """15 % lost to the meta model, then 15 % of the rest to the targets: 72 % left passes."""
    predictions, meta, targets = make_inputs(8, n=200)
    meta = meta.iloc[30:]
    targets = targets.iloc[list(range(30)) + list(range(56, 200))]
    reference = nt.correlation_contribution(predictions, meta, targets)
    assert_parity(correlation_contribution(predictions, meta, targets), reference)


def test_pairwise_alignment_fails_past_the_rule_in_both() -> None:
    predictions, meta, targets = make_inputs(9, n=200)
    meta = meta.iloc[30:]
    targets = targets.iloc[list(range(30)) + list(range(65, 200))]  # 135 / 170 < 80 %
    with pytest.raises(AssertionError):
        nt.correlation_contribution(predictions, meta, targets)
    with pytest.raises(AlignmentError, match="predictions does not have enough"):
        correlation_contribution(predictions, meta, targets)


@pytest.mark.parametrize(("lost", "fails"), [(40, False), (41, True)])
def test_twenty_percent_rule_on_the_meta_model(lost: int, fails: bool) -> None:
    predictions, meta, targets = make_inputs(10, n=200)
    meta.iloc[:lost] = np.nan
    if fails:
        with pytest.raises(AssertionError):
            nt.correlation_contribution(predictions, meta, targets)
        with pytest.raises(AlignmentError, match="meta_model does not have enough"):
            correlation_contribution(predictions, meta, targets)
    else:
        assert_parity(
            correlation_contribution(predictions, meta, targets),
            nt.correlation_contribution(predictions, meta, targets),
        )


@pytest.mark.parametrize("top_bottom", [1, 25, 150])
@pytest.mark.parametrize("decimals", [None, 1])
def test_top_bottom(top_bottom: int, decimals: int | None) -> None:
    predictions, meta, targets = make_inputs(11, decimals=decimals)
    assert_parity(
        correlation_contribution(predictions, meta, targets, top_bottom=top_bottom),
        nt.correlation_contribution(predictions, meta, targets, top_bottom=top_bottom),
    )


@pytest.mark.parametrize("top_bottom", [None, 30])
def test_constant_column_scores_zero_and_leaves_the_others_alone(top_bottom: int | None) -> None:
    predictions, meta, targets = make_inputs(12)
    predictions.insert(1, "flat", 0.25)
    ours = correlation_contribution(predictions, meta, targets, top_bottom=top_bottom)
    assert ours["flat"] == 0.0
    without = nt.correlation_contribution(
        predictions.drop(columns="flat"), meta, targets, top_bottom=top_bottom
    )
    assert_parity(ours.drop("flat"), without)


def test_submission_equal_to_the_meta_model_scores_zero() -> None:
    predictions, meta, targets = make_inputs(13, decimals=None)
    predictions["copy"] = meta
    assert abs(correlation_contribution(predictions, meta, targets)["copy"]) < 1e-15


@pytest.mark.parametrize("which", ["predictions", "meta_model", "targets"])
def test_duplicate_ids_name_the_input(which: str) -> None:
    predictions, meta, targets = make_inputs(14)
    if which == "predictions":
        predictions = pd.concat([predictions, predictions.iloc[:1]])
    elif which == "meta_model":
        meta = pd.concat([meta, meta.iloc[:1]])
    else:
        targets = pd.concat([targets, targets.iloc[:1]])
    with pytest.raises(AlignmentError, match=f"{which} has 1 duplicate id"):
        correlation_contribution(predictions, meta, targets)


def test_constant_meta_model_is_refused() -> None:
    predictions, meta, targets = make_inputs(15)
    with pytest.raises(ValueError, match="meta model is constant"):
        correlation_contribution(predictions, meta * 0 + 1, targets)


def test_numpy_function_checks_and_chunking() -> None:
    predictions, meta, targets = make_inputs(16, k=9)
    values = predictions.sort_index().to_numpy()
    m, t = meta.sort_index().to_numpy(), targets.sort_index().to_numpy()
    whole = mmc_scores(values, m, t)
    np.testing.assert_allclose(mmc_scores(values, m, t, chunk_size=2, workers=3), whole, atol=1e-16)
    with pytest.raises(ValueError, match="meta model contain NaN"):
        mmc_scores(values, np.where(t > 0.9, np.nan, m), t)
    with pytest.raises(ValueError, match="top_bottom"):
        mmc_scores(values, m, t, top_bottom=151)
