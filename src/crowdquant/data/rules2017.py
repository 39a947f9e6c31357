"""The 2017 layout: one CSV of id, era, data_type, feature1…featureN in [0, 1], binary target.

train and validation rows carry the target; the host-only holdout becomes the `test`
rows (features only, as in 2017); live rows have no target either.

A 2017 round publishes the layout as two files (`round_files`):
``numerai_training_data.csv`` (the train rows) and ``numerai_tournament_data.csv`` (the
validation rows with their target, the test rows and the round's live rows without), every
id re-keyed for the round by a keyed hash of its original id, so ids of two rounds cannot be
linked without the operator's key. Rows are ordered by their new id within each data type
and era, so a row's place in the file does not link it across rounds either. The operator
keeps `Rules2017RoundFiles.id_map` (new id → data type, era, original id) to score the round.

The benchmark a 2017 model has to beat is the version's benchmark models, as probabilities:
the equal blend of their per-era ranks (`benchmark_blend`) mapped through a logistic curve
fitted on the train rows' out-of-fold blend and binary target (`BenchmarkCalibration`). The
id map keeps that probability for every tournament row (`benchmark`); a version built
without benchmark models leaves it empty, and its rounds compare with ln 2, the log-loss of
always answering 0.5.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from crowdquant.data.anonymise import ids_from_prf
from crowdquant.data.keys import keyed_digests
from crowdquant.data.release import DatasetVersion
from crowdquant.data.splits import HOLDOUT, LIVE, TRAIN, VALIDATION

DATA_TYPES_2017 = {TRAIN: "train", VALIDATION: "validation", HOLDOUT: "test", LIVE: "live"}
TRAINING_FILENAME = "numerai_training_data.csv"
TOURNAMENT_FILENAME = "numerai_tournament_data.csv"


class Rules2017FilesError(ValueError):
    """A round's 2017 files cannot be made from what was given."""


def binary_targets(id_map: pd.DataFrame) -> pd.Series:
    """1 when a row's residual return beats its era's median, else 0 (NaN without a return)."""
    median = id_map.groupby("era")["residual_return"].transform("median")
    above = (id_map["residual_return"] > median).astype("Int8")
    return above.where(id_map["residual_return"].notna()).set_axis(id_map["id"])


def benchmark_blend(ranks: pd.DataFrame) -> pd.Series:
    """The equal blend of the benchmark models' per-era ranks (every column but `era`)."""
    return ranks.drop(columns="era", errors="ignore").mean(axis=1)


@dataclass(frozen=True)
class BenchmarkCalibration:
    """P(target = 1) = σ(intercept + slope · (blend − 0.5)): the benchmark blend as a
    probability, so its log-loss compares with a 2017 submission's."""

    intercept: float
    slope: float

    @classmethod
    def fit(cls, blend: pd.Series, targets: pd.Series) -> BenchmarkCalibration:
        """The logistic fit (Newton's method, lightly ridged) of binary `targets` on `blend`,
        over the ids both have."""
        both = pd.concat([blend.rename("blend"), targets.rename("target")], axis=1).dropna()
        if both.empty:
            raise Rules2017FilesError("no train row has both a benchmark blend and a target")
        x = np.column_stack([np.ones(len(both)), both["blend"].to_numpy(np.float64) - 0.5])
        y = both["target"].to_numpy(np.float64)
        weights = np.zeros(2)
        ridge = 1e-6 * len(both) * np.eye(2)
        for _ in range(50):
            p = 1.0 / (1.0 + np.exp(-(x @ weights)))
            step = np.linalg.solve(
                (x.T * (p * (1 - p))) @ x + ridge, x.T @ (y - p) - ridge @ weights
            )
            weights = weights + step
            if np.abs(step).max() < 1e-10:
                break
        return cls(intercept=float(weights[0]), slope=float(weights[1]))

    def probabilities(self, blend: pd.Series) -> pd.Series:
        z = self.intercept + self.slope * (blend.to_numpy(np.float64) - 0.5)
        return pd.Series(1.0 / (1.0 + np.exp(-z)), index=blend.index)


def _part_2017(
    frame: pd.DataFrame, features: list[str], data_type: str, targets: pd.Series | None
) -> pd.DataFrame:
    """Rows of one data type in the 2017 layout: features / 4, era ``eraN``, the binary
    target where `targets` is given (else empty)."""
    missing = [name for name in features if name not in frame.columns]
    if missing:
        raise Rules2017FilesError(
            f"the {data_type} rows lack {len(missing)} of the version's features,"
            f" e.g. {missing[0]!r}"
        )
    values = frame[features].to_numpy("float64") / 4.0
    part = pd.DataFrame(
        values, index=frame.index, columns=[f"feature{i}" for i in range(1, len(features) + 1)]
    )
    part.insert(0, "data_type", data_type)
    part.insert(0, "era", "era" + frame["era"].astype(int).astype(str))
    part["target"] = targets.reindex(frame.index) if targets is not None else pd.NA
    part["target"] = part["target"].astype("Int8")
    return part


def frame_2017(version: DatasetVersion) -> pd.DataFrame:
    features = version.features_json()["feature_sets"]["all"]
    targets = binary_targets(version.id_map())
    parts = []
    for split, data_type in DATA_TYPES_2017.items():
        shown = split in (TRAIN, VALIDATION)
        parts.append(
            _part_2017(version.frame(split), features, data_type, targets if shown else None)
        )
    legacy = pd.concat(parts)
    legacy["target"] = legacy["target"].astype("Int8")
    return legacy.rename_axis("id")


def version_rows(version: DatasetVersion) -> pd.DataFrame:
    """The version's train, validation and test (holdout) rows in the 2017 layout, by
    original id: what every round of a 2017 tournament re-publishes under fresh ids. The
    test rows carry their target here too: `round_files` keeps it in the operator's id map
    only."""
    features = version.features_json()["feature_sets"]["all"]
    targets = binary_targets(version.id_map())
    parts = [
        _part_2017(version.frame(split), features, DATA_TYPES_2017[split], targets)
        for split in (TRAIN, VALIDATION, HOLDOUT)
    ]
    rows = pd.concat(parts)
    rows["target"] = rows["target"].astype("Int8")
    return rows.rename_axis("id")


@dataclass(frozen=True)
class Rules2017RoundFiles:
    """One 2017 round's files (index `id`, the round's ids) and the operator's id map.

    id_map: index `id` (the round's id of every tournament row), columns `data_type`, `era`,
    `original_id` (the version's id, or for live rows the id of the round's live file),
    `target` (the binary target of validation and test rows, to score them; empty on live
    rows) and `benchmark` (the benchmark models' probability of the row; empty without
    them). The published tournament file shows the target of validation rows only.
    """

    training: pd.DataFrame
    tournament: pd.DataFrame
    id_map: pd.DataFrame


def round_ids(key: bytes, original_ids: pd.Index) -> pd.Index:
    """Each original id re-keyed for a round: ``n`` + 15 hex digits of a keyed hash."""
    words = keyed_digests(key, [str(i) for i in original_ids])[:, 0]
    ids: pd.Index = pd.Index(ids_from_prf(words), name="id")
    return ids


def round_files(
    base: pd.DataFrame,
    features: list[str],
    live: pd.DataFrame,
    key: bytes,
    benchmark: pd.Series | None = None,
) -> Rules2017RoundFiles:
    """A round's 2017 files from the version's rows (`version_rows`) and the round's live
    rows (index id; columns era and the version's published `features`, bins 0–4), every id
    re-keyed with `key` (the round's own key: derive one per round). `benchmark`: by
    original id, the benchmark models' probability of each tournament row."""
    rows = pd.concat([base, _part_2017(live, features, "live", None)])
    if rows.index.has_duplicates:
        raise Rules2017FilesError("a live id is also an id of the version's rows")
    original = pd.Index(rows.index.astype(str), name="original_id")
    new_ids = round_ids(key, original)
    if new_ids.has_duplicates:  # 60-bit ids: a collision is astronomically unlikely
        raise Rules2017FilesError("two rows drew the same round id; derive another key")
    rows = rows.set_axis(new_ids)
    rows.insert(0, "original_id", original.to_numpy())
    order = np.lexsort(
        (
            new_ids.to_numpy(str),
            rows["era"].str[3:].astype(int).to_numpy(),
            rows["data_type"]
            .map({t: k for k, t in enumerate(DATA_TYPES_2017.values())})
            .to_numpy(),
        )
    )
    rows = rows.iloc[order]
    training = rows[rows["data_type"] == "train"].drop(columns="original_id")
    tournament_rows = rows[rows["data_type"] != "train"]
    published = tournament_rows.drop(columns="original_id")
    published["target"] = published["target"].where(published["data_type"] == "validation")
    id_map = tournament_rows[["data_type", "era", "original_id", "target"]].copy()
    id_map["benchmark"] = (
        np.nan
        if benchmark is None
        else benchmark.astype("float64").reindex(id_map["original_id"]).to_numpy()
    )
    return Rules2017RoundFiles(training=training, tournament=published, id_map=id_map)


def export_2017(version: DatasetVersion, out: Path) -> Path:
    """Write the legacy CSV atomically (a temporary file renamed into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        frame_2017(version).to_csv(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
