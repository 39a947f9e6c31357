"""Per-era scoring: equal to numerai-tools era by era, and identical on a Dask cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from distributed import Client, LocalCluster
from numerai_tools import scoring as reference

from crowdquant.scoring.eras import score_eras

MODELS = ["m1", "m2", "m3"]
FEATURES = [f"f{i}" for i in range(6)]


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    rng = np.random.default_rng(11)
    n_eras, rows = 6, 150
    era = np.repeat([f"{e:04d}" for e in range(1, n_eras + 1)], rows)
    target = rng.choice([0, 0.25, 0.5, 0.75, 1.0], size=len(era), p=[0.05, 0.2, 0.5, 0.2, 0.05])
    data = pd.DataFrame(
        rng.integers(0, 5, (len(era), len(FEATURES))).astype(float), columns=FEATURES
    )
    for i, model in enumerate(MODELS):
        data[model] = np.round(0.1 * i * target + rng.random(len(era)), 2)  # ties
    data["meta"] = data[MODELS].mean(axis=1)
    data["target"] = target
    data["era"] = era
    data.index = pd.Index([f"id{i:05d}" for i in range(len(era))], name="id")
    return data.sample(frac=1.0, random_state=1)  # rows need not be grouped by era


def _reference(frame: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for _, era in frame.groupby("era", sort=True):
        target = era["target"].rename("target")
        rows.append(
            np.concatenate(
                [
                    reference.numerai_corr(era[MODELS], target).to_numpy(),
                    reference.correlation_contribution(era[MODELS], era["meta"], target).to_numpy(),
                    reference.feature_neutral_corr(
                        era[MODELS].sort_index(), era[FEATURES].sort_index(), target
                    ).to_numpy(),
                ]
            )
        )
    return pd.DataFrame(rows)


def test_per_era_scores_match_the_reference(frame: pd.DataFrame) -> None:
    ours = score_eras(frame, MODELS, "target", meta_model="meta", features=FEATURES)
    assert list(ours.columns.get_level_values("metric").unique()) == ["corr", "mmc", "fnc"]
    assert list(ours.index) == sorted(frame["era"].unique())
    np.testing.assert_allclose(ours.to_numpy(), _reference(frame).to_numpy(), atol=1e-9)


def test_a_dask_cluster_gives_identical_numbers(frame: pd.DataFrame) -> None:
    local = score_eras(frame, MODELS, "target", meta_model="meta", features=FEATURES)
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=None, memory_limit="1GiB",
        ) as cluster,
        Client(cluster) as client,
    ):  # fmt: skip
        distributed = score_eras(
            frame, MODELS, "target", meta_model="meta", features=FEATURES, client=client
        )
    pd.testing.assert_frame_equal(local, distributed, check_exact=True)


def test_incomplete_rows_are_refused(frame: pd.DataFrame) -> None:
    broken = frame.copy()
    broken.iloc[0, broken.columns.get_loc("m1")] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        score_eras(broken, MODELS, "target")
    with pytest.raises(KeyError, match="nope"):
        score_eras(frame, ["nope"], "target")
