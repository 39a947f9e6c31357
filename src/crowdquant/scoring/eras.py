"""Scores over many eras: one pure function per era, mapped in process or on a Dask cluster.

`score_era` scores one era's (n × K) predictions with CORR, MMC (or BMC, given a benchmark
blend as the meta model) and FNC. `score_eras` groups rows by era and maps it, either in a
loop or with `client.map` on a `dask.distributed` cluster: the same function on the same
inputs, so both give the same numbers.

Diagnostics score many uploads against the same validation eras: there `fnc_by_era` with an
`EraNeutralisers` prepared once per dataset version does the FNC part without refactoring
each era's features for every submission.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import pandas as pd
from threadpoolctl import threadpool_limits

from crowdquant.scoring.contribution import mmc_scores
from crowdquant.scoring.corr import corr_scores
from crowdquant.scoring.neutralise import fnc_scores
from crowdquant.scoring.ranking import FloatArray

if TYPE_CHECKING:
    from distributed import Client

EraScores = dict[str, FloatArray]


def score_era(
    predictions: npt.ArrayLike,
    targets: npt.ArrayLike,
    meta_model: npt.ArrayLike | None = None,
    features: npt.ArrayLike | None = None,
) -> EraScores:
    """CORR, and MMC / FNC where a meta model / features are given, for one era's rows.

    Rows are aligned and complete (no NaN); each metric is a (K,) array.
    """
    scores = {"corr": corr_scores(predictions, targets, workers=1)}
    if meta_model is not None:
        scores["mmc"] = mmc_scores(predictions, meta_model, targets, workers=1)
    if features is not None:
        scores["fnc"] = fnc_scores(predictions, features, targets, workers=1)
    return scores


def _score_era(arguments: dict[str, np.ndarray | None]) -> EraScores:
    predictions, targets = arguments["predictions"], arguments["targets"]
    assert predictions is not None and targets is not None
    return score_era(predictions, targets, arguments["meta_model"], arguments["features"])


def era_rows(eras: np.ndarray) -> list[tuple[object, np.ndarray]]:
    """Each era's label (sorted) and the positions of its rows."""
    codes, labels = pd.factorize(eras, sort=True)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(labels) + 1))
    return [(labels[e], order[bounds[e] : bounds[e + 1]]) for e in range(len(labels))]


def score_eras(
    frame: pd.DataFrame,
    predictions: Sequence[str],
    target: str,
    *,
    era: str = "era",
    meta_model: str | None = None,
    features: Sequence[str] | None = None,
    client: Client | None = None,
) -> pd.DataFrame:
    """Per-era scores of the `predictions` columns: eras × (metric, submission).

    Rows with a NaN in the predictions, target or meta model are refused: validate and
    clean submissions first, as the tournament does.
    """
    used = [*predictions, target, *([meta_model] if meta_model else []), *(features or [])]
    missing = [c for c in used if c not in frame.columns]
    if missing:
        raise KeyError(f"columns not in the frame: {missing[:5]}")
    if frame[used].isna().to_numpy().any():
        raise ValueError("per-era scoring needs complete rows: found NaN in the scored columns")
    labels: list[object] = []
    arguments: list[dict[str, np.ndarray | None]] = []
    values = {
        "predictions": frame[list(predictions)].to_numpy(np.float64),
        "targets": frame[target].to_numpy(np.float64),
        "meta_model": None if meta_model is None else frame[meta_model].to_numpy(np.float64),
        "features": None if features is None else frame[list(features)].to_numpy(),
    }  # features keep their dtype: int8 bins factorise faster
    for label, rows in era_rows(frame[era].to_numpy()):
        labels.append(label)
        arguments.append({k: None if v is None else v[rows] for k, v in values.items()})
    if client is None:
        with threadpool_limits(limits=1, user_api="blas"):  # small products: threads cost more
            results = [_score_era(args) for args in arguments]
    else:
        futures = client.map(_score_era, arguments, pure=True)
        results = client.gather(futures)  # type: ignore[no-untyped-call]
    metrics = list(results[0]) if results else ["corr"]
    columns = pd.MultiIndex.from_product([metrics, list(predictions)], names=["metric", "model"])
    table = np.array([np.concatenate([r[m] for m in metrics]) for r in results])
    return pd.DataFrame(
        table.reshape(len(labels), -1), index=pd.Index(labels, name=era), columns=columns
    )
