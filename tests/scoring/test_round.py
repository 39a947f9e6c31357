"""PreparedRound: the batch entry point equals the direct scorers and numerai-tools."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.align import AlignmentError
from crowdquant.scoring.contribution import mmc_scores
from crowdquant.scoring.corr import corr_scores
from crowdquant.scoring.neutralise import fnc_scores
from crowdquant.scoring.round import PreparedRound

BINS = np.array([0.0, 0.25, 0.5, 0.75, 1.0])
TOL = 1e-9


class Round:
    """A small random round: unsorted ids, tied predictions, one constant submission."""

    def __init__(self, seed: int, n: int = 300, k: int = 6, f: int = 12) -> None:
        rng = np.random.default_rng(seed)
        self.rng = rng
        self.ids = np.array([f"n{x:012x}" for x in rng.choice(2**40, n, replace=False)])
        self.target = rng.choice(BINS, n, p=[0.1, 0.2, 0.4, 0.2, 0.1])
        self.features = rng.integers(0, 5, (n, f)).astype(np.int8)
        signal = 0.3 * (self.target - 0.5) + 0.05 * self.features[:, 0]
        values = np.round(signal[:, None] + rng.random((n, k)), 2)
        values[:, 3] = 0.5  # constant
        self.values = values
        self.meta = np.round(values.mean(axis=1) + rng.normal(0, 0.05, n), 3)
        self.names = [f"model_{i}" for i in range(k)]

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, index=self.ids, columns=self.names)

    def series(self, values: np.ndarray, name: str = "target") -> pd.Series:
        return pd.Series(values, index=self.ids, name=name)

    def prepared(self, top_bottom: int | None = None) -> PreparedRound:
        return PreparedRound(
            self.values,
            self.ids,
            self.meta,
            features=self.features,
            names=self.names,
            top_bottom=top_bottom,
        )


def reference(r: Round, targets: pd.Series, top_bottom: int | None = None) -> pd.DataFrame:
    """numerai-tools' scores; FNC without the constant column (it would fail the batch)."""
    frame = r.frame()
    varying = frame.drop(columns="model_3").sort_index()
    features = pd.DataFrame(r.features, index=r.ids).sort_index()
    fnc = nt.feature_neutral_corr(varying, features, targets, top_bottom=top_bottom)
    return pd.DataFrame(
        {
            "corr": nt.numerai_corr(frame, targets, top_bottom=top_bottom),
            "mmc": nt.correlation_contribution(
                frame, r.series(r.meta, "meta"), targets, top_bottom=top_bottom
            ),
            "fnc": fnc.reindex(r.names),
        }
    )


def assert_matches_reference(ours: pd.DataFrame, expected: pd.DataFrame) -> None:
    varying = [name for name in ours.index if name != "model_3"]
    for column in ("corr", "mmc", "fnc"):
        np.testing.assert_allclose(
            ours.loc[varying, column], expected.loc[varying, column], rtol=0, atol=TOL
        )
    assert np.isnan(ours.loc["model_3", "corr"])  # constant: NaN / 0 / 0
    assert ours.loc["model_3", "mmc"] == 0.0
    assert ours.loc["model_3", "fnc"] == 0.0


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
@pytest.mark.parametrize("top_bottom", [None, 40])
def test_matches_numerai_tools(top_bottom: int | None) -> None:
    r = Round(0)
    prepared = r.prepared(top_bottom=top_bottom)
    assert prepared.has_fnc
    for day in range(3):
        targets = r.series(r.rng.permutation(r.target))
        ours = prepared.score_frame(targets)
        assert list(ours.index) == r.names
        assert_matches_reference(ours, reference(r, targets, top_bottom))
        assert prepared.score(targets).n_rows == len(r.ids), day


@pytest.mark.parametrize("top_bottom", [None, 40])
def test_equals_the_direct_functions(top_bottom: int | None) -> None:
    r = Round(1)
    order = np.argsort(r.ids)
    values, meta, target = r.values[order], r.meta[order], r.target[order]
    scores = r.prepared(top_bottom=top_bottom).score(r.target)
    assert scores.fnc is not None
    direct = {
        "corr": corr_scores(values, target, top_bottom=top_bottom),
        "mmc": mmc_scores(values, meta, target, top_bottom=top_bottom),
        "fnc": fnc_scores(values, r.features[order], target, top_bottom=top_bottom),
    }
    for name, expected in direct.items():
        np.testing.assert_allclose(getattr(scores, name), expected, rtol=0, atol=1e-13)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_missing_nan_and_extra_target_ids_match_numerai_tools() -> None:
    r = Round(2)
    prepared = r.prepared()
    targets = r.series(r.target.copy())
    targets.iloc[r.rng.choice(300, 12, replace=False)] = np.nan
    targets = targets.drop(targets.index[r.rng.choice(300, 15, replace=False)])
    extra = pd.Series(1.0, index=[f"x{i:03d}" for i in range(20)])  # shifts the centring
    targets = pd.concat([targets, extra]).rename("target")
    ours = prepared.score_frame(targets)
    assert_matches_reference(ours, reference(r, targets))
    again = prepared.score_frame(targets)  # served by the cached sub-round
    pd.testing.assert_frame_equal(again, ours)
    rescored = prepared.score_frame(targets.rename("t2") * 0.5)
    assert_matches_reference(rescored, reference(r, targets.rename("t2") * 0.5))


def test_array_targets_follow_the_given_id_order() -> None:
    r = Round(3)
    prepared = r.prepared()
    target = r.target.copy()
    target[:10] = np.nan
    from_array = prepared.score(target)
    from_series = prepared.score(r.series(target))
    for name in ("corr", "mmc", "fnc"):
        np.testing.assert_allclose(getattr(from_array, name), getattr(from_series, name))
    assert from_array.n_rows == 290


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_raw_returns_without_target_power() -> None:
    r = Round(4)
    returns = r.series((r.target - 0.5) * 0.1 + r.rng.normal(0, 0.05, 300), "ret")
    scores = r.prepared().score_frame(returns, target_pow15=False)
    np.testing.assert_allclose(
        scores["corr"], nt.numerai_corr(r.frame(), returns, target_pow15=False), atol=TOL
    )
    mmc = nt.correlation_contribution(r.frame(), r.series(r.meta), returns)
    np.testing.assert_allclose(scores["mmc"], mmc, atol=TOL)


def test_custom_neutraliser_hook_equals_features() -> None:
    r = Round(5)
    order = np.argsort(r.ids)
    basis = np.column_stack([r.features[order].astype(float), np.ones(len(r.ids))])

    def lstsq_neutraliser(gaussian: np.ndarray) -> np.ndarray:
        fitted = basis @ np.linalg.lstsq(basis, gaussian, rcond=1e-6)[0]
        out = gaussian - fitted
        out[:, np.ptp(gaussian, axis=0) == 0] = np.nan
        return out

    hooked = PreparedRound(r.values, r.ids, r.meta, neutraliser=lstsq_neutraliser, chunk_size=2)
    scores, expected = hooked.score(r.target), r.prepared().score(r.target)
    assert scores.fnc is not None and expected.fnc is not None
    np.testing.assert_allclose(scores.fnc, expected.fnc, atol=1e-12)
    plain = PreparedRound(r.values, r.ids, r.meta)
    assert not plain.has_fnc and plain.score(r.target).fnc is None
    np.testing.assert_allclose(plain.score(r.target).mmc, expected.mmc, atol=1e-15)


def test_refusals() -> None:
    r = Round(6, n=50)
    with pytest.raises(AlignmentError, match=r"ids has 1 duplicate id"):
        PreparedRound(r.values, [*r.ids[:-1], r.ids[0]], r.meta)
    holed = r.values.copy()
    holed[0, 0] = np.nan
    with pytest.raises(ValueError, match="predictions contain NaN"):
        PreparedRound(holed, r.ids, r.meta)
    with pytest.raises(ValueError, match="either features or a neutraliser"):
        PreparedRound(r.values, r.ids, r.meta, features=r.features, neutraliser=lambda g: g)
    with pytest.raises(ValueError, match="features must have 50 rows"):
        PreparedRound(r.values, r.ids, r.meta, features=r.features[:-1])
    with pytest.raises(ValueError, match="meta model is constant"):
        PreparedRound(r.values, r.ids, np.ones(50))
    prepared = PreparedRound(r.values, r.ids, r.meta)
    too_few = r.target.copy()
    too_few[:11] = np.nan  # 39 / 50 < 80 %
    with pytest.raises(AlignmentError, match="targets do not have enough"):
        prepared.score(too_few)
    with pytest.raises(AlignmentError, match="does not have enough overlapping ids"):
        prepared.score(r.series(too_few))
    with pytest.raises(ValueError, match="targets must have shape"):
        prepared.score(r.target[:-1])
