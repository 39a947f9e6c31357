"""Neutralisation, FNC and feature exposure against numerai-tools 0.7.2 (the test oracle)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from numerai_tools import scoring as reference

from crowdquant.scoring.align import AlignmentError
from crowdquant.scoring.neutralise import (
    EraNeutralisers,
    Neutraliser,
    feature_neutral_corr,
    fnc_by_era,
    fnc_scores,
    max_feature_correlation,
    max_feature_exposure,
    neutralise,
    neutralised_predictions,
)

PARITY = 1e-9
N_ROWS, N_FEATURES = 600, 24


def _ids(n: int) -> pd.Index:
    return pd.Index([f"id{i:05d}" for i in range(n)], name="id")


def _features(rng: np.random.Generator, kind: str, n: int = N_ROWS) -> npt.NDArray[np.generic]:
    if kind == "int8":  # Numerai-style bins 0–4, correlated in pairs
        base = rng.integers(0, 5, size=(n, N_FEATURES // 2))
        noisy = np.clip(base + rng.integers(-1, 2, size=base.shape), 0, 4)
        return np.hstack([base, noisy]).astype(np.int8)
    latent = rng.normal(size=(n, 4))
    return latent @ rng.normal(size=(4, N_FEATURES)) + rng.normal(size=(n, N_FEATURES))


def _frames(
    rng: np.random.Generator, kind: str, n_columns: int = 5
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    ids = _ids(N_ROWS)
    features = pd.DataFrame(
        _features(rng, kind), index=ids, columns=[f"feature_{j}" for j in range(N_FEATURES)]
    )
    signal = features.to_numpy(dtype=np.float64) @ rng.normal(size=N_FEATURES) / 10
    raw = signal[:, None] + rng.normal(size=(N_ROWS, n_columns))
    predictions = pd.DataFrame(
        np.round(1 / (1 + np.exp(-raw)), 2),  # rounded: many ties
        index=ids,
        columns=[f"model_{k}" for k in range(n_columns)],
    )
    noise = rng.normal(size=N_ROWS)
    targets = pd.Series(
        np.digitize(signal + noise, np.quantile(signal + noise, [0.1, 0.3, 0.7, 0.9])) / 4,
        index=ids,
        name="target",
    )
    return predictions, features, targets


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(20240607)


# -- neutralise ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float", "int8"])
@pytest.mark.parametrize("proportion", [1.0, 0.5])
def test_neutralise_matches_reference(
    rng: np.random.Generator, kind: str, proportion: float
) -> None:
    values = pd.DataFrame(rng.normal(size=(N_ROWS, 6)) * 3 + 1)
    features = pd.DataFrame(_features(rng, kind))
    expected = reference.neutralize(values, features, proportion).to_numpy()
    neutraliser = Neutraliser(features.to_numpy())
    assert neutraliser.method == "cholesky"
    np.testing.assert_allclose(neutraliser.apply(values, proportion), expected, atol=PARITY)
    # a factored Neutraliser serves any later batch, column by column or as a vector
    np.testing.assert_allclose(
        neutraliser.apply(values.to_numpy()[:, 2], proportion), expected[:, 2], atol=PARITY
    )
    np.testing.assert_allclose(
        neutralise(values, features.to_numpy(), proportion), expected, atol=PARITY
    )


def _degenerate(rng: np.random.Generator, case: str) -> npt.NDArray[np.float64]:
    features = rng.normal(size=(N_ROWS, 8))
    if case == "duplicate":
        features[:, 3] = features[:, 5]
    elif case == "constant":
        features[:, 2] = 0.25
    elif case == "one-hot":  # the dummies sum to the intercept
        features[:, :3] = np.eye(3)[rng.integers(0, 3, N_ROWS)]
    elif case == "tiny-scale":  # below lstsq's rcond relative to the other columns
        features[:, 4] *= 1e-9
    elif case == "huge-mean":
        features[:, 1] += 1e7
    elif case == "wide":  # more features than rows
        features = rng.normal(size=(50, 60))
    return features


@pytest.mark.parametrize(
    ("case", "method", "rank"),
    [
        ("duplicate", "svd", 8),
        ("constant", "cholesky", 8),  # a constant feature lies in the intercept's span
        ("one-hot", "svd", 8),
        ("tiny-scale", "svd", 8),
        ("huge-mean", "svd", 1),  # lstsq's rcond drops every direction but one
        ("wide", "svd", 50),
    ],
)
def test_degenerate_neutralizers_follow_the_reference_rule(
    rng: np.random.Generator, case: str, method: str, rank: int
) -> None:
    features = _degenerate(rng, case)
    values = rng.normal(size=(len(features), 3))
    expected = reference.neutralize(pd.DataFrame(values), pd.DataFrame(features)).to_numpy()
    neutraliser = Neutraliser(features)
    assert (neutraliser.method, neutraliser.rank) == (method, rank)
    np.testing.assert_allclose(neutraliser.apply(values), expected, atol=PARITY)


def test_integer_features_use_an_exact_gram(rng: np.random.Generator) -> None:
    bins = _features(rng, "int8")
    values = rng.normal(size=(N_ROWS, 3))
    np.testing.assert_allclose(
        Neutraliser(bins).apply(values),
        Neutraliser(bins.astype(np.float64)).apply(values),
        atol=1e-12,
    )


def test_constant_column_is_nan_without_touching_the_others(rng: np.random.Generator) -> None:
    values = rng.normal(size=(N_ROWS, 3))
    values[:, 1] = 0.5
    features = rng.normal(size=(N_ROWS, 5))
    out = neutralise(values, features)
    assert np.isnan(out[:, 1]).all()
    expected = reference.neutralize(pd.DataFrame(values), pd.DataFrame(features)).to_numpy()
    np.testing.assert_allclose(out[:, [0, 2]], expected[:, [0, 2]], atol=PARITY)


def test_neutralise_refuses_nan_and_mismatched_rows(rng: np.random.Generator) -> None:
    values = rng.normal(size=(N_ROWS, 2))
    features = rng.normal(size=(N_ROWS, 3))
    features[7, 1] = np.nan
    with pytest.raises(ValueError, match="neutralizers contain 1 NaN"):
        Neutraliser(features)
    features[7, 1] = 0.0
    values[3, 0] = np.nan
    with pytest.raises(ValueError, match="values contain 1 NaN"):
        neutralise(values, features)
    with pytest.raises(ValueError, match="same rows in the same order"):
        neutralise(values[:-1], features)


def test_neutralised_predictions_match_reference_and_are_feature_neutral(
    rng: np.random.Generator,
) -> None:
    predictions, features, _ = _frames(rng, "float")
    gaussian = reference.gaussian(reference.tie_kept_rank(predictions))
    expected = reference.variance_normalize(reference.neutralize(gaussian, features))
    out = neutralised_predictions(gaussian.to_numpy(), features.to_numpy())
    np.testing.assert_allclose(out, expected.to_numpy(), atol=PARITY)
    np.testing.assert_allclose(out.std(axis=0), 1.0, atol=1e-12)
    exposure = np.corrcoef(np.hstack([out, features.to_numpy()]), rowvar=False)
    assert np.abs(exposure[: out.shape[1], out.shape[1] :]).max() < 1e-12


def test_neutralised_predictions_constant_column_is_nan(rng: np.random.Generator) -> None:
    gaussian = rng.normal(size=(N_ROWS, 3))
    gaussian[:, 0] = 0.0
    features = rng.normal(size=(N_ROWS, 4))
    gaussian[:, 2] = features @ np.arange(1.0, 5.0) + 3  # explained entirely by the features
    out = neutralised_predictions(gaussian, Neutraliser(features))
    assert np.isnan(out[:, 0]).all() and np.isnan(out[:, 2]).all()
    assert np.isfinite(out[:, 1]).all()


# -- FNC ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["float", "int8"])
@pytest.mark.parametrize("top_bottom", [None, 50])
def test_fnc_matches_reference(rng: np.random.Generator, kind: str, top_bottom: int | None) -> None:
    predictions, features, targets = _frames(rng, kind)
    expected = reference.feature_neutral_corr(predictions, features, targets, top_bottom)
    out = feature_neutral_corr(predictions, features, targets, top_bottom)
    pd.testing.assert_series_equal(out, expected, check_names=False, atol=PARITY, rtol=0)
    assert out.abs().max() > 1e-2  # not trivially zero


def test_fnc_aligns_targets_like_the_reference(rng: np.random.Generator) -> None:
    predictions, features, targets = _frames(rng, "int8")
    extra = pd.Series(rng.integers(0, 5, 40) / 4, index=_ids(N_ROWS + 40)[-40:], name="target")
    targets = pd.concat([targets.drop(targets.index[10:60]), extra])  # missing and extra ids
    targets.iloc[[3, 200]] = np.nan
    targets = targets.sample(frac=1.0, random_state=1).rename("target")  # unsorted is fine
    expected = reference.feature_neutral_corr(predictions, features, targets)
    out = feature_neutral_corr(predictions, features, targets)
    pd.testing.assert_series_equal(out, expected, check_names=False, atol=PARITY, rtol=0)
    with pytest.raises(AlignmentError, match="enough overlapping ids"):
        feature_neutral_corr(predictions, features, targets.iloc[: N_ROWS // 2])


def test_constant_column_scores_zero_without_poisoning_the_batch(
    rng: np.random.Generator,
) -> None:
    predictions, features, targets = _frames(rng, "float")
    with_constant = predictions.assign(model_1=0.5)
    with pytest.raises(AssertionError):  # the reference fails the whole batch
        reference.feature_neutral_corr(with_constant, features, targets)
    out = feature_neutral_corr(with_constant, features, targets)
    assert out["model_1"] == 0.0
    others = predictions.drop(columns="model_1")
    expected = reference.feature_neutral_corr(others, features, targets)
    pd.testing.assert_series_equal(
        out.drop("model_1"), expected, check_names=False, atol=PARITY, rtol=0
    )


def test_fnc_numpy_batches_chunks_and_threads_agree(rng: np.random.Generator) -> None:
    predictions, features, targets = _frames(rng, "int8", n_columns=7)
    expected = feature_neutral_corr(predictions, features, targets).to_numpy()
    neutraliser = Neutraliser(features.to_numpy())
    for chunk_size, workers in [(1, 1), (3, 2), (256, None)]:
        out = fnc_scores(
            predictions.to_numpy(),
            neutraliser,
            targets.to_numpy(),
            chunk_size=chunk_size,
            workers=workers,
        )
        np.testing.assert_allclose(out, expected, atol=1e-14)


def test_fnc_refuses_unaligned_or_missing_inputs(rng: np.random.Generator) -> None:
    predictions, features, targets = _frames(rng, "float")
    with pytest.raises(AlignmentError, match="sorted by id"):
        feature_neutral_corr(predictions.iloc[::-1], features.iloc[::-1], targets)
    with pytest.raises(AlignmentError, match="identical indexes"):
        feature_neutral_corr(predictions, features.iloc[::-1], targets)
    with pytest.raises(AlignmentError, match="identical indexes"):
        feature_neutral_corr(predictions.iloc[5:], features, targets)
    with pytest.raises(AlignmentError, match="duplicate"):
        duplicated = pd.concat([predictions, predictions.iloc[:1]]).sort_index()
        feature_neutral_corr(duplicated, pd.concat([features, features.iloc[:1]]), targets)
    nan_features = features.copy()
    nan_features.iloc[4, 2] = np.nan
    with pytest.raises(ValueError, match="features contain 1 NaN"):
        feature_neutral_corr(predictions, nan_features, targets)
    nan_predictions = predictions.copy()
    nan_predictions.iloc[4, 2] = np.nan
    with pytest.raises(ValueError, match="predictions contain 1 NaN"):
        feature_neutral_corr(nan_predictions, features, targets)


@pytest.mark.parametrize("shuffle", [False, True])
def test_fnc_by_era_matches_reference_per_era(rng: np.random.Generator, shuffle: bool) -> None:
    n_eras, per_era = 4, 150
    bins = rng.integers(0, 5, size=(n_eras * per_era, 8)).astype(np.int8)
    eras = np.repeat([f"era{e:02d}" for e in range(n_eras)], per_era)
    predictions = rng.random(n_eras * per_era) + bins[:, 0] / 10
    targets = rng.integers(0, 5, n_eras * per_era) / 4
    frame = pd.DataFrame(bins, index=_ids(len(eras)), columns=[f"f{j}" for j in range(8)])
    frame = frame.assign(era=eras, prediction=predictions, target=targets)
    expected = [
        reference.feature_neutral_corr(
            era[["prediction"]], era[[f"f{j}" for j in range(8)]], era["target"]
        ).iloc[0]
        for _, era in frame.groupby("era")
    ]
    order = rng.permutation(len(eras)) if shuffle else np.arange(len(eras))
    labels, scores = fnc_by_era(predictions[order], bins[order], targets[order], eras[order])
    assert list(labels) == sorted(set(eras))
    np.testing.assert_allclose(scores, expected, atol=PARITY)
    prepared = EraNeutralisers(bins[order], eras[order], workers=2)
    _, again = fnc_by_era(predictions[order][:, None], prepared, targets[order], workers=2)
    np.testing.assert_allclose(again[:, 0], expected, atol=PARITY)


# -- feature exposure ---------------------------------------------------------------------


@pytest.mark.parametrize("top_bottom", [None, 60])
def test_max_feature_correlation_matches_reference(
    rng: np.random.Generator, top_bottom: int | None
) -> None:
    predictions, features, _ = _frames(rng, "int8")
    features["feature_3"] = 2  # a constant feature is skipped, as in the reference
    for column in predictions:
        name, value = reference.max_feature_correlation(predictions[column], features, top_bottom)
        ours = max_feature_correlation(predictions[column], features, top_bottom)
        assert ours[0] == name
        assert ours[1] == pytest.approx(value, abs=PARITY)


def test_max_feature_exposure_batch(rng: np.random.Generator) -> None:
    predictions, features, _ = _frames(rng, "float")
    values = predictions.to_numpy(copy=True)
    values[:, 2] = 0.3  # constant: no exposure
    index, value = max_feature_exposure(values, features.to_numpy(), chunk_size=2)
    assert index[2] == -1 and np.isnan(value[2])
    for k in (0, 1, 3, 4):
        name, expected = reference.max_feature_correlation(predictions.iloc[:, k], features)
        assert features.columns[index[k]] == name
        assert value[k] == pytest.approx(expected, abs=PARITY)
    with pytest.raises(ValueError, match="constant"):
        max_feature_correlation(pd.Series(0.3, index=features.index), features)
    with pytest.raises(AlignmentError, match="identical indexes"):
        max_feature_correlation(predictions.iloc[1:, 0], features)
