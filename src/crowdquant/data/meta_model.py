"""The meta model on the validation eras, as participants download it (`meta_model.parquet`).

Where a resolved round's live era is a validation era (the operator replayed that week),
the round's real meta model is carried over by ticker onto the validation ids; every other
era (and any row the round did not cover) gets the blend of the predictions published with
the version: the mean of their per-era percentile ranks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

META_MODEL_COLUMN = "numerai_meta_model"
BLEND = "blend"


def prediction_blend(validation_eras: pd.Series, predictions: Sequence[pd.Series]) -> pd.Series:
    """The mean of each prediction's per-era percentile rank, by validation id
    (`validation_eras`: era by id)."""
    if not predictions:
        raise ValueError("a blend needs at least one prediction")
    ranked = [
        values.reindex(validation_eras.index).groupby(validation_eras).rank(pct=True)
        for values in predictions
    ]
    return pd.concat(ranked, axis=1).mean(axis=1)


def validation_meta_model(
    validation: pd.DataFrame,
    blend: pd.Series,
    round_models: Mapping[str, tuple[int, pd.Series]],
) -> tuple[pd.DataFrame, dict[str, str]]:
    """The meta model file's frame (index ``id``, column ``numerai_meta_model``) and the
    source of each era (``round <N>`` or ``blend``).

    `validation`: index ``id``, columns ``era`` and ``ticker`` (the operator's id map);
    `blend`: by id; `round_models`: era → (round number, that round's meta model by ticker).
    """
    values = blend.reindex(validation.index).astype("float64")
    sources: dict[str, str] = {}
    for era, rows in validation.groupby("era", sort=True):
        found = round_models.get(str(era))
        if found is None:
            sources[str(era)] = BLEND
            continue
        number, by_ticker = found
        carried = rows["ticker"].map(by_ticker)
        covered = carried.notna()
        if not covered.any():
            sources[str(era)] = BLEND
            continue
        values.loc[carried.index[covered]] = carried[covered].astype("float64")
        sources[str(era)] = f"round {number}"
    frame = values.rename(META_MODEL_COLUMN).rename_axis("id").to_frame()
    return frame, sources
