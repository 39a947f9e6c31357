"""The parsed files the bots of one run share: a file is known by its bytes only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from crowdquant.simulate.bots import ExampleFits, ParsedFiles, ranked


def write(path: Path, values: list[float]) -> Path:
    pd.DataFrame({"feature_a": values}, index=pd.Index(["x", "y"], name="id")).to_parquet(path)
    return path


def test_one_rounds_file_is_never_served_for_another(tmp_path: Path) -> None:
    parsed = ParsedFiles()
    first = write(tmp_path / "1_live.parquet", [0.25, 0.5])
    second = write(tmp_path / "2_live.parquet", [0.75, 1.0])
    assert parsed.read(first)["feature_a"].tolist() == [0.25, 0.5]
    assert parsed.read(second)["feature_a"].tolist() == [0.75, 1.0]
    # the same name holding new bytes is read afresh
    write(first, [0.0, 0.125])
    assert parsed.read(first)["feature_a"].tolist() == [0.0, 0.125]


def test_each_reader_gets_its_own_copy_equal_to_reading_the_file(tmp_path: Path) -> None:
    parsed = ParsedFiles()
    path = write(tmp_path / "live.parquet", [0.25, 0.5])
    one = parsed.read(path)
    one.loc["x", "feature_a"] = 9.0  # a bot changing its frame changes no other bot's
    another = parsed.read(tmp_path / "live.parquet")
    pd.testing.assert_frame_equal(another, pd.read_parquet(path))


def test_only_the_files_used_last_are_kept(tmp_path: Path) -> None:
    parsed = ParsedFiles(size=2)
    paths = [write(tmp_path / f"{n}.parquet", [n, n + 0.5]) for n in range(3)]
    frames = [parsed.read(path) for path in paths]
    assert len(parsed) == 2
    assert [frame["feature_a"].iloc[0] for frame in frames] == [0, 1, 2]
    assert parsed.read(paths[0])["feature_a"].tolist() == [0, 0.5]  # read again, still right


def training_file(path: Path, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "era": np.repeat(["0001", "0002"], 60),
            "feature_a": rng.uniform(size=120),
            "feature_b": rng.uniform(size=120),
            "target": rng.uniform(size=120),
        },
        index=pd.Index([f"id{n}" for n in range(120)], name="id"),
    )
    frame.to_parquet(path)
    return path


def test_bots_fitting_the_example_recipe_on_the_same_bytes_share_one_fit(
    tmp_path: Path,
) -> None:
    parsed, fits = ParsedFiles(), ExampleFits()
    train = training_file(tmp_path / "train.parquet", seed=1)
    features = ["feature_a", "feature_b"]
    first = fits.fitted(parsed.read(train), features)
    assert fits.fitted(parsed.read(train), features) is first  # another bot, the same bytes
    # the shared fit is the one a bot would make on its own
    own = fits.fitted(pd.read_parquet(train), features)  # no digest: fitted afresh
    assert own is not first
    live = parsed.read(train)[features].to_numpy(np.float32)
    np.testing.assert_array_equal(own.predict(live), first.predict(live))
    # other bytes, or other features, are fitted afresh
    other = training_file(tmp_path / "other.parquet", seed=2)
    assert fits.fitted(parsed.read(other), features) is not first
    assert fits.fitted(parsed.read(train), ["feature_a"]) is not first


def test_bots_sharing_a_fit_share_its_ranks_of_the_same_live_bytes(tmp_path: Path) -> None:
    parsed, fits = ParsedFiles(), ExampleFits()
    train = training_file(tmp_path / "train.parquet", seed=1)
    live_file = training_file(tmp_path / "live.parquet", seed=3)
    features = ["feature_a", "feature_b"]
    first, second = (fits.predictor(parsed.read(train), features) for _ in range(2))
    ranks = first(parsed.read(live_file))
    again = second(parsed.read(live_file))  # another bot, the same live bytes
    own = ranked(
        fits.fitted(pd.read_parquet(train), features).predict(
            pd.read_parquet(live_file)[features].to_numpy(np.float32)
        )
    )  # fitted and predicted afresh, as a bot on its own would
    np.testing.assert_array_equal(ranks, own)
    np.testing.assert_array_equal(again, own)
    again[:] = 0  # each bot gets its own copy
    np.testing.assert_array_equal(first(parsed.read(live_file)), own)
    other = training_file(tmp_path / "other.parquet", seed=4)  # other live bytes: predicted
    np.testing.assert_array_equal(
        first(parsed.read(other)),
        ranked(
            fits.fitted(pd.read_parquet(train), features).predict(
                pd.read_parquet(other)[features].to_numpy(np.float32)
            )
        ),
    )
    undigested = first(pd.read_parquet(live_file))  # a frame without a digest: predicted
    np.testing.assert_array_equal(undigested, own)
