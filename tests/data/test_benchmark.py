"""Benchmark models: names after the version, out-of-fold train predictions, live reuse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.benchmark import benchmark_column, train_benchmark_models
from crowdquant.data.config import BenchmarkConfig

CHEAP = BenchmarkConfig(n_estimators=8)


def test_columns_are_named_after_the_version_and_target() -> None:
    assert benchmark_column("v5.3", "target_ender_20") == "v53_lgbm_ender20"
    assert benchmark_column("v5.2", "target_teager2b_60") == "v52_lgbm_teager2b60"
    assert benchmark_column("bundled-3fa9", "target_cyrusd_20") == "bundled3fa9_lgbm_cyrusd20"


def _frame(n_eras: int = 20, rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = n_eras * rows
    features = pd.DataFrame(
        rng.integers(0, 5, (n, 6)).astype(np.int8), columns=[f"feature_{i}" for i in range(6)]
    )
    features.insert(0, "era", np.repeat([f"{e:04d}" for e in range(1, n_eras + 1)], rows))
    features.index = pd.Index([f"n{i:015x}" for i in range(n)], name="id")
    noise = rng.normal(0, 1, n)
    features["target_a"] = features["feature_0"] + noise
    features["target_b"] = -features["feature_1"] + noise
    features.loc[features.index[-rows:], "target_b"] = np.nan  # a longer target, cut short
    return features


def test_each_model_learns_its_own_target_and_predicts_ranks_per_era() -> None:
    train = _frame()
    features = [c for c in train.columns if c.startswith("feature_")]
    models, out_of_fold = train_benchmark_models(train, features, ["target_a", "target_b"], CHEAP)
    assert out_of_fold.index.equals(train.index)
    assert list(out_of_fold.columns) == ["era", "target_a", "target_b"]
    other = _frame(seed=1)
    predicted = models.predict(other)
    assert predicted["target_a"].corr(other["feature_0"]) > 0.8
    assert predicted["target_b"].corr(other["feature_1"]) < -0.8
    for _, era in predicted.groupby("era"):
        assert era["target_a"].between(0, 1, inclusive="right").all()
        assert era["target_a"].max() == 1.0


def test_train_predictions_come_from_models_that_never_saw_those_eras() -> None:
    train = _frame()
    features = [c for c in train.columns if c.startswith("feature_")]
    models, out_of_fold = train_benchmark_models(train, features, ["target_a"], CHEAP)
    in_sample = models.predict(train)
    assert not np.allclose(out_of_fold["target_a"], in_sample["target_a"])
    again = train_benchmark_models(train, features, ["target_a"], CHEAP)[1]
    pd.testing.assert_frame_equal(again, out_of_fold)  # deterministic


def test_a_target_without_train_rows_is_named() -> None:
    train = _frame()
    train["target_c"] = np.nan
    features = [c for c in train.columns if c.startswith("feature_")]
    with pytest.raises(ValueError, match="target_c"):
        train_benchmark_models(train, features, ["target_c"], CHEAP)
