"""CORR: parity with numerai-tools' numerai_corr on randomised inputs, and the departures."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.align import AlignmentError
from crowdquant.scoring.corr import corr_scores, numerai_corr

BINS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
TOL = 1e-9


def make_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.array([f"n{x:012x}" for x in rng.choice(2**40, n, replace=False)])


def make_inputs(
    seed: int, n: int = 300, k: int = 5, decimals: int | None = 2
) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    ids = make_ids(rng, n)
    targets = pd.Series(rng.choice(BINS, n, p=[0.1, 0.2, 0.4, 0.2, 0.1]), ids, name="target")
    values = 0.3 * (targets.to_numpy()[:, None] - 0.5) + rng.random((n, k))
    if decimals is not None:
        values = np.round(values, decimals)
    predictions = pd.DataFrame(values, index=ids, columns=[f"model_{i}" for i in range(k)])
    return predictions, targets


def assert_parity(ours: pd.Series, reference: pd.Series) -> None:
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours.to_numpy(), reference.to_numpy(), rtol=0, atol=TOL)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("decimals", [None, 1, 2])
def test_parity_with_ties_and_unsorted_ids(seed: int, decimals: int | None) -> None:
    predictions, targets = make_inputs(seed, decimals=decimals)
    assert not predictions.index.is_monotonic_increasing
    assert_parity(numerai_corr(predictions, targets), nt.numerai_corr(predictions, targets))


@pytest.mark.parametrize("seed", range(3))
def test_parity_with_nans_missing_and_extra_ids(seed: int) -> None:
    rng = np.random.default_rng(100 + seed)
    predictions, targets = make_inputs(seed, n=400)
    predictions.iloc[rng.choice(400, 15, replace=False), 1] = np.nan  # drops rows everywhere
    targets.iloc[rng.choice(400, 10, replace=False)] = np.nan
    targets = targets.drop(targets.index[rng.choice(400, 20, replace=False)])  # missing ids
    extra = pd.Series(rng.choice(BINS, 30), make_ids(rng, 30), name="target")
    targets = pd.concat([targets, extra]).sample(frac=1.0, random_state=seed).rename("target")
    assert_parity(numerai_corr(predictions, targets), nt.numerai_corr(predictions, targets))


def test_target_is_centred_before_alignment() -> None:
    predictions, targets = make_inputs(7)
    rng = np.random.default_rng(7)
    extra = pd.Series(np.ones(40), make_ids(rng, 40), name="target")  # shifts the mean
    padded = pd.concat([targets, extra]).rename("target")
    ours = numerai_corr(predictions, padded)
    assert_parity(ours, nt.numerai_corr(predictions, padded))
    aligned = padded.loc[predictions.index]
    after = corr_scores(predictions.to_numpy(), aligned.to_numpy())  # centred after aligning
    assert np.abs(ours.to_numpy() - after).max() > 1e-6


@pytest.mark.parametrize("decimals", [None, 1])
def test_raw_returns_without_target_power(decimals: int | None) -> None:
    predictions, targets = make_inputs(11, decimals=decimals)
    rng = np.random.default_rng(11)
    returns = (targets - 0.5) * 0.1 + pd.Series(rng.normal(0.01, 0.05, len(targets)), targets.index)
    returns = returns.rename("ret")
    ours = numerai_corr(predictions, returns, target_pow15=False)
    assert_parity(ours, nt.numerai_corr(predictions, returns, target_pow15=False))


@pytest.mark.parametrize("top_bottom", [1, 20, 150])
@pytest.mark.parametrize("decimals", [None, 1])
def test_top_bottom(top_bottom: int, decimals: int | None) -> None:
    predictions, targets = make_inputs(13, decimals=decimals)
    ours = numerai_corr(predictions, targets, top_bottom=top_bottom)
    assert_parity(ours, nt.numerai_corr(predictions, targets, top_bottom=top_bottom))


def test_top_bottom_off_and_too_large() -> None:
    predictions, targets = make_inputs(14, n=50)
    assert_parity(
        numerai_corr(predictions, targets, top_bottom=0), nt.numerai_corr(predictions, targets)
    )
    with pytest.raises(ValueError, match="top_bottom=26 needs at least 52 rows"):
        numerai_corr(predictions, targets, top_bottom=26)


@pytest.mark.parametrize(("dropped", "fails"), [(20, False), (21, True)])
def test_twenty_percent_rule_on_nan_rows(dropped: int, fails: bool) -> None:
    predictions, targets = make_inputs(15, n=100)
    predictions.iloc[:dropped, 3] = np.nan
    if fails:
        with pytest.raises(AssertionError):
            nt.numerai_corr(predictions, targets)
        with pytest.raises(AlignmentError, match="does not have enough overlapping ids"):
            numerai_corr(predictions, targets)
    else:
        assert_parity(numerai_corr(predictions, targets), nt.numerai_corr(predictions, targets))


@pytest.mark.parametrize(("extra", "fails"), [(25, False), (26, True)])
def test_twenty_percent_rule_on_extra_target_ids(extra: int, fails: bool) -> None:
    predictions, targets = make_inputs(16, n=100)
    rng = np.random.default_rng(16)
    padded = pd.concat([targets, pd.Series(0.5, make_ids(rng, extra))]).rename("target")
    if fails:  # 100 / 126 < 80 %
        with pytest.raises(AssertionError):
            nt.numerai_corr(predictions, padded)
        with pytest.raises(AlignmentError, match="targets does not have enough"):
            numerai_corr(predictions, padded)
    else:
        assert_parity(numerai_corr(predictions, padded), nt.numerai_corr(predictions, padded))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("top_bottom", [None, 30])
def test_constant_column_is_nan_and_leaves_the_others_alone(top_bottom: int | None) -> None:
    predictions, targets = make_inputs(17)
    predictions.insert(2, "flat", 0.5)
    ours = numerai_corr(predictions, targets, top_bottom=top_bottom)
    assert np.isnan(ours["flat"])
    without = nt.numerai_corr(predictions.drop(columns="flat"), targets, top_bottom=top_bottom)
    assert_parity(ours.drop("flat"), without)


@pytest.mark.parametrize("which", ["predictions", "targets"])
def test_duplicate_ids_name_the_input(which: str) -> None:
    predictions, targets = make_inputs(18)
    if which == "predictions":
        predictions = pd.concat([predictions, predictions.iloc[:1]])
    else:
        targets = pd.concat([targets, targets.iloc[:1]]).rename("target")
    with pytest.raises(AlignmentError, match=f"{which} has 1 duplicate id"):
        numerai_corr(predictions, targets)


def test_series_predictions_are_one_column() -> None:
    predictions, targets = make_inputs(19)
    ours = numerai_corr(predictions["model_0"], targets)
    assert list(ours.index) == ["model_0"]
    assert_parity(ours, nt.numerai_corr(predictions[["model_0"]], targets))


def test_numpy_function_checks_and_chunking() -> None:
    predictions, targets = make_inputs(20, k=9)
    values, t = predictions.sort_index().to_numpy(), targets.sort_index().to_numpy()
    whole = corr_scores(values, t)
    chunked = corr_scores(values, t, chunk_size=2, workers=3)
    np.testing.assert_allclose(chunked, whole, rtol=0, atol=1e-15)
    np.testing.assert_allclose(corr_scores(values[:, 3], t), whole[3:4], atol=1e-15)
    holed = values.copy()
    holed[0, 0] = np.nan
    with pytest.raises(ValueError, match="predictions contain NaN"):
        corr_scores(holed, t)
    with pytest.raises(ValueError, match="targets must have shape"):
        corr_scores(values, t[:-1])
