from pathlib import Path

import pandas as pd

from crowdquant.data.legacy import export_legacy

from .conftest import Built


def test_legacy_csv_has_the_2017_layout(tmp_path: Path, synthetic_build: Built) -> None:
    out = export_legacy(synthetic_build.version, tmp_path / "legacy.csv")
    legacy = pd.read_csv(out, dtype={"id": str})
    n_features = len(synthetic_build.version.features_json()["feature_sets"]["all"])
    expected = [
        "id",
        "era",
        "data_type",
        *(f"feature{i}" for i in range(1, n_features + 1)),
        "target",
    ]
    assert list(legacy.columns) == expected
    assert set(legacy["data_type"]) == {"train", "validation", "test", "live"}
    assert legacy["era"].str.fullmatch(r"era\d+").all()
    features = legacy.filter(like="feature")
    assert features.min().min() >= 0 and features.max().max() <= 1
    known = legacy[legacy["data_type"].isin(["train", "validation"])]
    assert set(known["target"].unique()) == {0, 1}
    assert known.groupby("era")["target"].mean().between(0.4, 0.6).all()
    assert legacy.loc[legacy["data_type"].isin(["test", "live"]), "target"].isna().all()


def test_test_rows_are_the_hidden_holdout(tmp_path: Path, synthetic_build: Built) -> None:
    legacy = pd.read_csv(export_legacy(synthetic_build.version, tmp_path / "l.csv"), index_col="id")
    holdout = synthetic_build.version.frame("holdout")
    assert set(legacy.index[legacy["data_type"] == "test"]) == set(holdout.index)
    assert not list(tmp_path.glob(".*partial*"))
