"""The published files' invariants, on every source."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from crowdquant.data.build import build_version
from crowdquant.data.features import compute_features, feature_specs
from crowdquant.data.panel import PanelError
from crowdquant.data.release import ReleaseError, published_benchmarks
from crowdquant.data.sources import FileSource
from crowdquant.data.targets import CONSTRUCTIONS

from .conftest import FAST, KEYS, SMALL_MARKET, Built, build, published_frames


def _features(built: Built) -> list[str]:
    return list(built.version.features_json()["feature_sets"]["all"])


def test_published_directory_holds_exactly_the_release_files(any_build: Built) -> None:
    names = sorted(p.name for p in any_build.version.published.iterdir())
    assert names == sorted(
        [
            "features.json", "live.parquet", "live_example_preds.parquet", "manifest.json",
            "train.parquet", "validation.parquet", "validation_example_preds.parquet",
            "train_benchmark_models.parquet", "validation_benchmark_models.parquet",
            "live_benchmark_models.parquet",
        ]
    )  # fmt: skip


def _missing(built: Built, frame: pd.DataFrame) -> pd.DataFrame:
    """Which published cells come from a missing raw value (they sit in the middle bin)."""
    id_map = built.version.id_map().set_index("id").loc[frame.index]
    dates = pd.DatetimeIndex(sorted(set(id_map["date"])))
    days = built.panel.dates.get_indexer(dates)
    raw = compute_features(built.panel, days)
    rows = dates.get_indexer(pd.DatetimeIndex(id_map["date"]))
    cols = built.panel.close.columns.get_indexer(id_map["ticker"])
    sources = {m["name"]: m["source"] for m in built.version.feature_map()}
    order = [s.name for s in feature_specs(built.panel.volume is not None)]
    wanted = [order.index(sources[name]) for name in _features(built)]
    missing = np.isnan(raw[rows, cols][:, wanted])
    return pd.DataFrame(missing, index=frame.index, columns=_features(built))


def test_feature_bins_are_equal_count_per_era(any_build: Built) -> None:
    features = _features(any_build)
    assert len(features) >= 100
    for split, frame in published_frames(any_build.version).items():
        bins = frame[features]
        assert set(bins.dtypes) == {np.dtype("int8")}, split
        assert bins.to_numpy().min() >= 0 and bins.to_numpy().max() <= 4
        missing = _missing(any_build, frame)
        assert (bins[missing] == 2).sum().sum() == missing.sum().sum()  # missing → middle bin
        for era, rows in bins.groupby(frame["era"]):
            present = ~missing.loc[rows.index].to_numpy()
            values = rows.to_numpy()
            counts = np.stack([((values == b) & present).sum(axis=0) for b in range(5)])
            assert (counts.max(axis=0) - counts.min(axis=0) <= 1).all(), (split, era)


def test_targets_have_the_5_20_50_20_5_shape(any_build: Built) -> None:
    for split in ("train", "validation"):
        frame = any_build.version.frame(split)
        assert frame["target"].notna().all()
        for _, era in frame.groupby("era"):
            n = len(era)
            counts = era["target"].value_counts().reindex([0, 0.25, 0.5, 0.75, 1.0], fill_value=0)
            expected = np.diff(np.floor(np.array([0, 0.05, 0.25, 0.75, 0.95, 1.0]) * n + 0.5))
            assert (np.abs(counts.to_numpy() - expected) <= 1).all()


def test_ids_are_unique_and_never_repeat_across_eras(any_build: Built) -> None:
    frames = [*published_frames(any_build.version).values(), any_build.version.frame("holdout")]
    ids = pd.concat([f.index.to_series() for f in frames])
    assert ids.str.fullmatch(r"n[0-9a-f]{15}").all()
    assert ids.is_unique


def test_live_has_no_targets_and_is_the_latest_era(any_build: Built) -> None:
    frames = published_frames(any_build.version)
    live = frames["live"]
    assert not any(c.startswith("target") for c in live.columns)
    assert live["era"].nunique() == 1
    assert (live["data_type"] == "live").all()
    assert live["era"].iloc[0] > frames["validation"]["era"].max()


def test_embargo_separates_the_splits(any_build: Built) -> None:
    frames = published_frames(any_build.version)
    holdout = any_build.version.frame("holdout")
    gap = FAST.splits.embargo_eras
    train_last = int(frames["train"]["era"].max())
    validation = frames["validation"]["era"].astype(int)
    assert validation.min() - train_last > gap
    assert int(holdout["era"].min()) - validation.max() > gap
    assert set(frames["train"]["era"]).isdisjoint(frames["validation"]["era"])


def _published_text(path: Path) -> str:
    """Every readable string a published file holds: JSON text, or a Parquet file's
    metadata (schema, pandas header), column names, ids and string values."""
    if path.suffix != ".parquet":
        return path.read_text()
    metadata = pq.read_metadata(path).metadata or {}
    parts = [v.decode() for v in metadata.values()]
    frame = pd.read_parquet(path)
    parts += [*map(str, frame.columns), *frame.index.astype(str)]
    for column in frame.select_dtypes(exclude="number").columns:
        parts += frame[column].astype(str).unique().tolist()
    return " ".join(parts)


def test_nothing_real_appears_in_the_published_files(any_build: Built) -> None:
    panel = any_build.panel
    real_names = [m["source"] for m in any_build.version.feature_map()]
    dates = any_build.version.eras()["date"].tolist()
    needles = {*panel.tickers, *real_names, *dates, *(d.replace("-", "") for d in dates)}
    needles |= set(panel.sector.unique())
    for path in any_build.version.published.iterdir():
        text = _published_text(path)
        tokens = set(re.findall(r"[A-Za-z0-9_./-]+", text))
        assert not tokens & needles, f"{path.name} contains {sorted(tokens & needles)[:5]}"
        assert not re.search(r"(19|20)\d\d-\d\d-\d\d", text), f"{path.name} holds a date"


def test_manifest_hashes_match(any_build: Built) -> None:
    any_build.version.verify()
    manifest = any_build.version.manifest()
    assert manifest["config_hash"] == FAST.digest()
    assert set(manifest["files"]) == {p.name for p in any_build.version.published.iterdir()} - {
        "manifest.json"
    }


def test_tampering_is_detected(tmp_path: Path, synthetic_build: Built) -> None:
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(synthetic_build.version.published, copy / "datasets" / "v1")
    shutil.copytree(synthetic_build.version.private, copy / "operator" / "datasets" / "v1")
    features = copy / "datasets" / "v1" / "features.json"
    features.write_text(features.read_text().replace("small", "smol"))
    from crowdquant.data.release import DatasetVersion

    with pytest.raises(ReleaseError, match="does not match its manifest"):
        DatasetVersion.open("v1", copy / "datasets", copy / "operator").verify()


def test_rebuilds_are_byte_identical(tmp_path: Path, synthetic_build: Built) -> None:
    again = build(tmp_path, synthetic_build.source)
    for first in (synthetic_build.version.published, synthetic_build.version.private):
        second = (
            again.version.published
            if first.name == "v1" and "operator" not in str(first)
            else again.version.private
        )
        for path in sorted(first.iterdir()):
            assert path.read_bytes() == (second / path.name).read_bytes(), path.name


def test_another_key_gives_other_ids_and_names(tmp_path: Path, synthetic_build: Built) -> None:
    from crowdquant.data.keys import OperatorKeys

    version, _ = build_version(
        synthetic_build.source,
        FAST,
        OperatorKeys(bytes(32)),
        tmp_path / "d",
        tmp_path / "o",
        version="v1",
    )
    ours = synthetic_build.version
    assert set(version.frame("train").index).isdisjoint(ours.frame("train").index)
    assert set(version.features_json()["feature_sets"]["all"]).isdisjoint(
        ours.features_json()["feature_sets"]["all"]
    )


def test_features_json_lists_sets_and_targets(any_build: Built) -> None:
    payload = any_build.version.features_json()
    sets = payload["feature_sets"]
    assert len(sets["small"]) < len(sets["medium"]) < len(sets["all"])
    assert set(sets["small"]) <= set(sets["medium"]) <= set(sets["all"])
    targets = payload["targets"]
    assert targets[0] == "target" and targets[1:] == sorted(targets[1:])
    for name in ("ender", "victor", "xerxes", "teager2b"):
        assert {f"target_{name}_20", f"target_{name}_60"} <= set(targets)
    for split in ("train", "validation"):
        frame = any_build.version.frame(split)
        assert set(targets) <= set(frame.columns)
        assert frame["target"].equals(frame["target_ender_20"])


def test_target_family_members_differ_and_longer_targets_respect_the_splits(
    any_build: Built,
) -> None:
    frame = any_build.version.frame("train")
    targets = any_build.version.features_json()["targets"][1:]
    described = any_build.version.target_map()
    assert described["main"] == "target_ender_20"
    assert described["targets"]["target_ender_20"]["construction"] == "beta_sector_residual"
    assert {d["construction"] for d in described["targets"].values()} == set(CONSTRUCTIONS)
    short = [t for t in targets if t.endswith("_20")]
    for column in short:
        assert frame[column].notna().all(), column
    corr = frame[short].corr().to_numpy()
    assert (corr[~np.eye(len(short), dtype=bool)] < 0.999).all()  # each its own construction
    # a 60-day target never reaches the validation split: the train eras just before it are
    # blank, so the last train era with one lies its reach before validation
    reach = described["targets"]["target_ender_60"]["reach_eras"]
    has_long = frame.loc[frame["target_ender_60"].notna(), "era"].astype(int)
    validation_first = int(any_build.version.frame("validation")["era"].min())
    assert has_long.max() <= validation_first - reach


def test_example_predictions_cover_validation_and_live(any_build: Built) -> None:
    for split in ("validation", "live"):
        preds = any_build.version.example_predictions(split)
        frame = any_build.version.frame(split)
        assert preds.index.equals(frame.index)
        assert preds["prediction"].between(0, 1).all()


def test_example_model_finds_the_planted_alpha(synthetic_build: Built) -> None:
    assert synthetic_build.built.summary["example_validation_corr"]["mean"] > 0.01


def test_operator_secrets_stay_out_of_the_published_directory(any_build: Built) -> None:
    published = any_build.version.published
    private = any_build.version.private
    assert not private.is_relative_to(published) and not published.is_relative_to(private)
    id_map = any_build.version.id_map()
    assert set(id_map["ticker"]) <= set(any_build.panel.tickers)
    assert len(id_map) == sum(
        len(any_build.version.frame(s)) for s in ("train", "validation", "holdout", "live")
    )


def test_an_existing_version_is_never_overwritten(synthetic_build: Built) -> None:
    root = synthetic_build.root
    with pytest.raises(ReleaseError, match="already exists"):
        build_version(
            synthetic_build.source, FAST, KEYS, root / "datasets", root / "operator", version="v1"
        )


def test_malformed_panel_leaves_nothing_behind(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("date,ticker,close\n2020-01-03,AAA,-1\n")
    with pytest.raises(PanelError):
        build_version(
            FileSource(path=bad), FAST, KEYS, tmp_path / "d", tmp_path / "o", version="v1"
        )
    assert not (tmp_path / "d").exists() or not any((tmp_path / "d").iterdir())
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").rglob("*"))


def test_a_failed_write_leaves_no_half_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crowdquant.data import release
    from crowdquant.data.sources import SyntheticSource

    def explode(*_: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(release, "_write_json", explode)
    with pytest.raises(OSError, match="disk full"):
        build(tmp_path, SyntheticSource(market=SMALL_MARKET))
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []


def test_summary_is_json_serialisable(any_build: Built) -> None:
    json.dumps(any_build.built.summary)


NUMERAI_GROUPS = (
    "intelligence", "wisdom", "charisma", "dexterity",
    "strength", "constitution", "agility", "serenity",
)  # fmt: skip


def test_feature_sets_are_named_and_sized_as_numerais(any_build: Built) -> None:
    sets = any_build.version.features_json()["feature_sets"]
    every = sets["all"]
    assert len(sets["small"]) == 42
    assert set(sets["small"]) <= set(sets["medium"]) <= set(every)
    for name in ("quantum", "sunshine", "rain", "midnight", "v2_equivalent_features"):
        assert sets[name] and set(sets[name]) <= set(every), name
    assert set(sets["v2_equivalent_features"]) < set(sets["v3_equivalent_features"])
    groups = [sets[name] for name in NUMERAI_GROUPS]
    assert sorted(f for group in groups for f in group) == sorted(every)  # a partition
    # the FNC set leaves the smallest era several rows per feature
    smallest = min(
        any_build.version.frame(s)["era"].value_counts().min()
        for s in ("train", "validation", "live")
    )
    assert 1 <= len(sets["fncv3_features"]) <= max(1, smallest // 4)
    assert set(sets["fncv3_features"]) <= set(sets["medium"])
    real = {m["name"]: m["group"] for m in any_build.version.feature_map()}
    for name in NUMERAI_GROUPS:  # a name stands for whole real groups, never part of one
        hidden = {real[f] for f in sets[name]}
        assert all({f for f in every if real[f] == g} <= set(sets[name]) for g in hidden)


def test_benchmark_models_cover_every_split_named_after_the_version(any_build: Built) -> None:
    version = any_build.version
    columns = ["era", "v1_lgbm_ender20", "v1_lgbm_teager2b20"]
    for split in ("train", "validation", "live"):
        frame = version.frame(split)
        published = pd.read_parquet(version.published / f"{split}_benchmark_models.parquet")
        assert list(published.columns) == columns
        assert published.index.equals(frame.index) and published["era"].equals(frame["era"])
        assert published[columns[1:]].notna().all().all()
        assert published[columns[1:]].gt(0).all().all() and published[columns[1:]].le(1).all().all()
    models = version.benchmark_models()
    assert models is not None and list(models.models) == ["target_ender_20", "target_teager2b_20"]
    live = version.frame("live")
    again = published_benchmarks(models.predict(live), "v1")
    pd.testing.assert_frame_equal(
        again, pd.read_parquet(version.published / "live_benchmark_models.parquet")
    )


def test_the_benchmark_model_learns_the_planted_alpha(synthetic_build: Built) -> None:
    corr = synthetic_build.built.summary["benchmark_validation_corr"]
    assert corr["target_ender_20"] > 0.01
