"""Allocation rules: stake × reputation (v1), stake only, equal; walk-forward blends."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.release import DatasetVersion
from crowdquant.fund.allocation import (
    EQUAL,
    REPUTATION_FLOOR,
    RULES,
    STAKE,
    STAKE_REPUTATION,
    AllocationError,
    allocation_weights,
    blend,
    compare_allocations,
    era_corr,
    trailing_reputation,
)
from crowdquant.fund.backtest import BacktestResult, VersionBacktest
from crowdquant.scoring.ranking import gaussianised

STAKES = pd.Series({"a": 10.0, "b": 10.0, "c": 0.0, "d": 5.0})
REPUTATION = pd.Series({"a": 0.03, "b": -0.01, "c": 0.05})  # d has no history


def test_stake_times_reputation_with_a_floor() -> None:
    weights = allocation_weights(STAKE_REPUTATION, STAKES, REPUTATION)
    raw = pd.Series({"a": 10 * 0.03, "b": 10 * REPUTATION_FLOOR, "c": 0.0, "d": 5 * 0.005})
    pd.testing.assert_series_equal(weights, (raw / raw.sum()).rename("weight"))
    assert weights["c"] == 0  # no stake, no weight, whatever the record
    assert weights["b"] == weights["d"] * 2  # a poor record counts as the floor
    no_history = allocation_weights(STAKE_REPUTATION, STAKES)
    pd.testing.assert_series_equal(no_history, allocation_weights(STAKE, STAKES))


def test_stake_and_equal_rules() -> None:
    assert allocation_weights(STAKE, STAKES).to_dict() == {"a": 0.4, "b": 0.4, "c": 0.0, "d": 0.2}
    assert (allocation_weights(EQUAL, STAKES) == 0.25).all()
    for rule in RULES:
        assert allocation_weights(rule, STAKES, REPUTATION).sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("rule", "stakes", "words"),
    [
        ("bogus-v9", STAKES, "unknown allocation rule"),
        (STAKE, STAKES * 0, "no model has a stake"),
        (STAKE_REPUTATION, STAKES * 0, "no model has a stake"),
        (STAKE, -STAKES, "non-negative"),
        (STAKE, STAKES * np.nan, "finite"),
    ],
)
def test_rules_refuse_what_they_cannot_weigh(rule: str, stakes: pd.Series, words: str) -> None:
    with pytest.raises(AllocationError, match=words):
        allocation_weights(rule, stakes)


def test_trailing_reputation_uses_only_resolved_eras() -> None:
    corr = pd.DataFrame({"a": np.arange(10.0)}, index=[f"{e:04d}" for e in range(10)])
    reputation = trailing_reputation(corr, delay=3, window=2)
    assert reputation["a"].iloc[:3].isna().all()
    assert reputation["a"].iloc[3] == 0.0  # era 0 only
    assert reputation["a"].iloc[9] == pytest.approx((5 + 6) / 2)  # eras 5 and 6
    with pytest.raises(ValueError, match="delay"):
        trailing_reputation(corr, delay=0)


def frame(seed: int = 0) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    rng = np.random.default_rng(seed)
    eras = pd.Series(np.repeat(["0001", "0002", "0003"], 50))
    eras.index = pd.Index([f"id{i}" for i in range(150)], name="id")
    target = pd.Series(rng.choice([0, 0.25, 0.5, 0.75, 1.0], 150), index=eras.index)
    predictions = pd.DataFrame(
        {"oracle": target + 0.1 * rng.standard_normal(150), "noise": rng.random(150)},
        index=eras.index,
    )
    return predictions, eras, target


def test_blend_is_the_meta_model_within_each_era() -> None:
    predictions, eras, _ = frame()
    only_oracle = pd.DataFrame({"oracle": 1.0, "noise": 0.0}, index=["0001", "0002", "0003"])
    blended = blend(predictions, eras, only_oracle)
    for era in ("0001", "0002"):
        rows = eras == era
        np.testing.assert_allclose(
            blended[rows], gaussianised(predictions.loc[rows, "oracle"].to_numpy())
        )
    half = pd.DataFrame(0.5, index=only_oracle.index, columns=predictions.columns)
    mixed = blend(predictions, eras, half)
    rows = eras == "0003"
    expected = (
        gaussianised(predictions.loc[rows, "oracle"].to_numpy())
        + gaussianised(predictions.loc[rows, "noise"].to_numpy())
    ) / 2
    np.testing.assert_allclose(mixed[rows], expected)


def test_era_corr_scores_each_model_in_each_era() -> None:
    predictions, eras, target = frame()
    corr = era_corr(predictions, eras, target)
    assert list(corr.index) == ["0001", "0002", "0003"]
    assert (corr["oracle"] > 0.8).all()
    assert (corr["noise"].abs() < 0.4).all()


def test_compare_allocations_walks_forward(built: DatasetVersion) -> None:
    validation = built.frame("validation")
    rng = np.random.default_rng(3)
    predictions = pd.DataFrame(
        {
            "example": built.example_predictions("validation")["prediction"],
            "oracle": validation["target"] + 0.2 * rng.standard_normal(len(validation)),
            "noise": rng.random(len(validation)),
        },
        index=validation.index,
    )
    seen: dict[str, pd.Series] = {}
    backtest = VersionBacktest(built)

    def run(name: str, blended: pd.Series) -> BacktestResult:
        seen[name] = blended
        return backtest.run(name, blended)

    stakes = pd.Series({"example": 1.0, "oracle": 1.0, "noise": 1.0})
    results = compare_allocations(
        predictions,
        validation["era"],
        validation["target"],
        stakes,
        run,
        delay=5,
        names={STAKE_REPUTATION: "meta model"},
    )
    assert list(results) == list(RULES)
    assert results[STAKE_REPUTATION].name == "meta model" and results[EQUAL].name == EQUAL
    eras = validation["era"]
    first, last = sorted(eras.unique())[0], sorted(eras.unique())[-1]
    # no history in the first era: stake × floor for everyone, i.e. the stake blend
    np.testing.assert_allclose(seen["meta model"][eras == first], seen[STAKE][eras == first])
    # later the oracle's record dominates the meta model
    corr = era_corr(pd.DataFrame(seen), eras, validation["target"]).loc[last]
    assert corr["meta model"] > corr[EQUAL]
