from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.rules2017 import (
    BenchmarkCalibration,
    Rules2017RoundFiles,
    benchmark_blend,
    binary_targets,
    export_2017,
    frame_2017,
    round_files,
    version_rows,
)

from .conftest import Built


def test_legacy_csv_has_the_2017_layout(tmp_path: Path, synthetic_build: Built) -> None:
    out = export_2017(synthetic_build.version, tmp_path / "legacy.csv")
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
    legacy = pd.read_csv(export_2017(synthetic_build.version, tmp_path / "l.csv"), index_col="id")
    holdout = synthetic_build.version.frame("holdout")
    assert set(legacy.index[legacy["data_type"] == "test"]) == set(holdout.index)
    assert not list(tmp_path.glob(".*partial*"))


def round_of(built: Built, key: bytes) -> Rules2017RoundFiles:
    version = built.version
    features = version.features_json()["feature_sets"]["all"]
    return round_files(version_rows(version), features, version.frame("live"), key)


def test_a_rounds_files_split_the_layout_and_rekey_every_id(synthetic_build: Built) -> None:
    files = round_of(synthetic_build, b"k" * 32)
    assert set(files.training["data_type"]) == {"train"}
    assert list(dict.fromkeys(files.tournament["data_type"])) == ["validation", "test", "live"]
    assert files.training["target"].notna().all()
    shown = files.tournament["data_type"] == "validation"
    assert files.tournament.loc[shown, "target"].notna().all()
    assert files.tournament.loc[~shown, "target"].isna().all()
    assert files.id_map.index.equals(files.tournament.index)
    # the operator keeps the test rows' target too, to score them; never the live rows'
    scored = files.id_map["data_type"].isin(["validation", "test"])
    assert files.id_map.loc[scored, "target"].isin([0, 1]).all()
    assert files.id_map.loc[~scored, "target"].isna().all()
    holdout = files.id_map[files.id_map["data_type"] == "test"]
    expected = binary_targets(synthetic_build.version.id_map()).reindex(holdout["original_id"])
    assert (holdout["target"].to_numpy() == expected.to_numpy()).all()
    version = synthetic_build.version
    originals = {
        str(i)
        for split in ("train", "validation", "holdout", "live")
        for i in version.frame(split).index
    }
    assert not originals & (set(files.training.index) | set(files.tournament.index))
    assert set(files.id_map["original_id"]) <= originals
    # the same rows as the whole-version export, in [0, 1]
    whole = frame_2017(version)
    assert len(files.training) + len(files.tournament) == len(whole)
    row = files.id_map.index[0]
    original = whole.loc[files.id_map.loc[row, "original_id"]]
    assert files.tournament.loc[row].drop("target").equals(original.drop("target"))


def test_each_round_key_gives_other_ids_and_the_same_key_the_same(synthetic_build: Built) -> None:
    first, again, second = (
        round_of(synthetic_build, key) for key in (b"a" * 32, b"a" * 32, b"b" * 32)
    )
    assert first.tournament.equals(again.tournament)
    assert not set(first.tournament.index) & set(second.tournament.index)
    assert not set(first.training.index) & set(second.training.index)
    # rows ordered by id within each era: the order is drawn afresh too
    assert (
        not first.training["era"]
        .reset_index(drop=True)
        .ne(second.training["era"].reset_index(drop=True))
        .any()
    )
    by_original = second.id_map.reset_index().set_index("original_id")["id"]
    assert not (first.id_map["original_id"].to_numpy() == by_original.index.to_numpy()).all()


def test_the_benchmark_blend_becomes_a_probability_fitted_on_train() -> None:
    rng = np.random.default_rng(0)
    ranks = pd.DataFrame({"era": "0001", "a": rng.random(20_000), "b": rng.random(20_000)})
    blend = benchmark_blend(ranks)
    assert blend.equals((ranks["a"] + ranks["b"]) / 2)
    chance = 1 / (1 + np.exp(-(0.1 + 2.0 * (blend - 0.5))))
    targets = pd.Series((rng.random(len(blend)) < chance).astype(float), index=blend.index)
    fitted = BenchmarkCalibration.fit(blend, targets.where(blend.index % 10 > 0))  # some NaN
    assert fitted.slope == pytest.approx(2.0, abs=0.25)
    assert fitted.intercept == pytest.approx(0.1, abs=0.05)
    probabilities = fitted.probabilities(pd.Series([0.0, 0.5, 1.0], index=["x", "y", "z"]))
    assert list(probabilities.index) == ["x", "y", "z"]
    assert probabilities.is_monotonic_increasing and probabilities.between(0, 1).all()


def test_a_rounds_id_map_keeps_the_benchmark_probability_of_each_row(
    synthetic_build: Built,
) -> None:
    without = round_of(synthetic_build, b"k" * 32)
    assert without.id_map["benchmark"].isna().all()
    version = synthetic_build.version
    features = version.features_json()["feature_sets"]["all"]
    live = version.frame("live")
    originals = pd.Index(
        [str(i) for split in ("validation", "holdout") for i in version.frame(split).index]
        + [str(i) for i in live.index]
    )
    benchmark = pd.Series(np.linspace(0.4, 0.6, len(originals)), index=originals)
    made = round_files(version_rows(version), features, live, b"k" * 32, benchmark)
    assert made.id_map.index.equals(without.id_map.index)
    expected = benchmark.reindex(made.id_map["original_id"]).to_numpy()
    assert (made.id_map["benchmark"].to_numpy() == expected).all()
    assert "benchmark" not in made.tournament.columns  # the operator's, never published
