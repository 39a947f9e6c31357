"""The 2017 layout: one CSV of id, era, data_type, feature1…featureN in [0, 1], binary target.

train and validation rows carry the target; the host-only holdout becomes the `test`
rows (features only, as in 2017); live rows have no target either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from crowdquant.data.release import DatasetVersion
from crowdquant.data.splits import HOLDOUT, LIVE, TRAIN, VALIDATION

LEGACY_TYPES = {TRAIN: "train", VALIDATION: "validation", HOLDOUT: "test", LIVE: "live"}


def binary_targets(id_map: pd.DataFrame) -> pd.Series:
    """1 when a row's residual return beats its era's median, else 0 (NaN without a return)."""
    median = id_map.groupby("era")["residual_return"].transform("median")
    above = (id_map["residual_return"] > median).astype("Int8")
    return above.where(id_map["residual_return"].notna()).set_axis(id_map["id"])


def legacy_frame(version: DatasetVersion) -> pd.DataFrame:
    features = version.features_json()["feature_sets"]["all"]
    targets = binary_targets(version.id_map())
    parts = []
    for split, legacy_type in LEGACY_TYPES.items():
        frame = version.frame(split)
        values = frame[features].to_numpy("float64") / 4.0
        part = pd.DataFrame(
            values, index=frame.index, columns=[f"feature{i}" for i in range(1, len(features) + 1)]
        )
        shown = split in (TRAIN, VALIDATION)
        part.insert(0, "data_type", legacy_type)
        part.insert(0, "era", "era" + frame["era"].astype(int).astype(str))
        part["target"] = targets.reindex(frame.index) if shown else pd.NA
        parts.append(part)
    legacy = pd.concat(parts)
    legacy["target"] = legacy["target"].astype("Int8")
    return legacy.rename_axis("id")


def export_legacy(version: DatasetVersion, out: Path) -> Path:
    """Write the legacy CSV atomically (a temporary file renamed into place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.partial-{os.getpid()}")
    try:
        legacy_frame(version).to_csv(tmp)
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
