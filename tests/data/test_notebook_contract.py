"""A version named `v5.3`, read as Numerai's example notebooks read theirs
(`hello_numerai`, `feature_neutralization`, `target_ensemble`): the same file names, sets,
columns and assertions."""

from __future__ import annotations

import json
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from crowdquant.data.build import build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig
from crowdquant.data.sources import SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig

from .conftest import KEYS

MARKET = SyntheticConfig(n_stocks=80, n_weeks=120, seed=5, alpha_strength=1e-3)
GROUPS = [
    "intelligence", "wisdom", "charisma", "dexterity",
    "strength", "constitution", "agility", "serenity",
]  # fmt: skip


@pytest.fixture(scope="module")
def v53(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("notebooks")
    config = DatasetConfig(example_model=ExampleModelConfig(max_iter=5))
    build_version(
        SyntheticSource(market=MARKET), config, KEYS, root / "datasets", root / "op", version="v5.3"
    )
    return root / "datasets"


def test_hello_numerai_and_feature_neutralization(v53: Path) -> None:
    feature_metadata = json.loads((v53 / "v5.3/features.json").read_text())
    feature_sets = feature_metadata["feature_sets"]
    for name in ["small", "medium", "all", "quantum", *GROUPS]:
        assert feature_sets[name], name
    feature_set = feature_sets["small"]
    train = pd.read_parquet(v53 / "v5.3/train.parquet", columns=["era", "target", *feature_set])
    train = train[train["era"].isin(train["era"].unique()[::4])]
    model = lgb.LGBMRegressor(
        n_estimators=20, learning_rate=0.05, max_depth=5, num_leaves=2**5 - 1,
        colsample_bytree=0.1, n_jobs=1, verbose=-1,
    )  # fmt: skip
    model.fit(train[feature_set], train["target"])

    validation = pd.read_parquet(
        v53 / "v5.3/validation.parquet", columns=["era", "data_type", "target", *feature_set]
    )
    validation = validation[validation["data_type"] == "validation"]
    last_train_era = int(train["era"].unique()[-1])
    eras_to_embargo = [str(era).zfill(4) for era in [last_train_era + i for i in range(4)]]
    validation = validation[~validation["era"].isin(eras_to_embargo)]
    validation["prediction"] = model.predict(validation[feature_set])
    assert validation["prediction"].notna().all() and validation["prediction"].std() > 0

    groups = {g: feature_sets[g] for g in GROUPS}
    assert sum(len(f) for f in groups.values()) == len(feature_sets["all"])

    live_features = pd.read_parquet(v53 / "v5.3/live.parquet", columns=feature_set)
    assert (pd.read_parquet(v53 / "v5.3/live.parquet")["data_type"] == "live").all()
    live_predictions = model.predict(live_features[feature_set])
    submission = pd.Series(live_predictions, index=live_features.index).to_frame("prediction")
    assert submission.index.name == "id" and len(submission) == len(live_features)


def test_target_ensemble(v53: Path) -> None:
    feature_metadata = json.loads((v53 / "v5.3/features.json").read_text())
    feature_set = feature_metadata["feature_sets"]["small"]
    targets = feature_metadata["targets"]
    train = pd.read_parquet(v53 / "v5.3/train.parquet", columns=["era", *feature_set, *targets])
    main_target = "target_ender_20"
    assert train["target"].equals(train[main_target])
    target_candidates = [main_target, "target_victor_20", "target_xerxes_20", "target_teager2b_20"]
    assert set(target_candidates) <= set(targets)
    assert train[target_candidates].notna().all().all()
    correlations = train[[t for t in targets if t.endswith("_20")]].corr()
    assert correlations.shape[0] >= 4

    validation = pd.read_parquet(
        v53 / "v5.3/validation.parquet", columns=["era", "data_type", *feature_set, *targets]
    )
    validation = validation[validation["data_type"] == "validation"]
    models = {}
    for target in target_candidates[:2]:
        model = lgb.LGBMRegressor(n_estimators=10, colsample_bytree=0.1, n_jobs=1, verbose=-1)
        model.fit(train[feature_set], train[target])
        models[target] = model
        validation[f"prediction_{target}"] = model.predict(validation[feature_set])
    ensemble = validation.groupby("era")[[f"prediction_{t}" for t in models]].rank(pct=True)
    validation["ensemble"] = ensemble.mean(axis=1)

    benchmark_models = pd.read_parquet(v53 / "v5.3/validation_benchmark_models.parquet")
    validation["v53_lgbm_ender20"] = benchmark_models["v53_lgbm_ender20"]
    assert validation["v53_lgbm_ender20"].notna().all()
    assert np.isfinite(validation[["ensemble", "v53_lgbm_ender20"]].corr().iloc[0, 1])
    live_benchmarks = pd.read_parquet(v53 / "v5.3/live_benchmark_models.parquet")
    live = pd.read_parquet(v53 / "v5.3/live.parquet")
    assert live_benchmarks.index.equals(live.index)
