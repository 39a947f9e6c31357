"""A dataset version's validation set, prepared once, and the scoring of one upload on it
(pure: no database)."""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from typing import IO, Any, Final, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.stats import rankdata

from crowdquant.data.pipeline import FNC_FEATURE_SET, MAIN_TARGET
from crowdquant.scoring.diagnostics import ValidationEras
from crowdquant.scoring.eras import era_rows
from crowdquant.scoring.neutralise import max_feature_exposure
from crowdquant.scoring.summary import summary_stats
from crowdquant.scoring.validation import DEFAULT_MAX_BYTES, LiveIds
from crowdquant.storage import FileStorage, NotFound
from crowdquant.tournament.datasets import storage_key
from crowdquant.tournament.diagnostics.report import (
    DiagnosticsReport,
    DiagnosticsSummary,
    EraDiagnostics,
)
from crowdquant.tournament.diagnostics.requests import VALIDATION_FILE, NoValidationData
from crowdquant.tournament.validator import IN_PROCESS, Validator

RULES: Final = "diagnostics-1"
"""Recorded in every result: the version of what is computed here."""
DEFAULT_FEATURE_SET: Final = FNC_FEATURE_SET
"""FNC's features, as Numerai's FNCv3; a version built without that set uses `medium`."""
FALLBACK_FEATURE_SET: Final = "medium"
META_MODEL: Final = "example_predictions"
EXAMPLE_FILE: Final = "validation_example_preds.parquet"
FEATURES_FILE: Final = "features.json"


# --- the validation set of a dataset version ---------------------------------------------------


def available_feature_set(sets: dict[str, Any], wanted: str) -> str:
    """`wanted`, or `medium` where the default FNC set is asked of a version without it."""
    if wanted not in sets and wanted == DEFAULT_FEATURE_SET and FALLBACK_FEATURE_SET in sets:
        return FALLBACK_FEATURE_SET
    return wanted


@dataclass(frozen=True, eq=False)
class ValidationSet:
    """A dataset version's validation data, prepared once for scoring many uploads.

    `ids` are every published validation id (what an upload must cover); the scored rows
    are those with a target, in `ids` order (`scored`).
    """

    version: str
    feature_set: str
    target: str
    ids: pd.Index
    scored: npt.NDArray[np.intp]
    eras: npt.NDArray[Any]
    example: npt.NDArray[np.float64]
    features: npt.NDArray[Any]
    scorer: ValidationEras
    era_rows: list[tuple[object, npt.NDArray[np.intp]]]
    example_ranks: list[npt.NDArray[np.float64]]
    example_corr: npt.NDArray[np.float64]

    @cached_property
    def live_ids(self) -> LiveIds:
        """`ids` indexed for validating uploads against them."""
        return LiveIds(self.ids)


def prepare_validation(
    version: str,
    validation: pd.DataFrame,
    example_predictions: pd.DataFrame | pd.Series,
    features_json: dict[str, Any],
    *,
    feature_set: str = DEFAULT_FEATURE_SET,
    target: str = MAIN_TARGET,
) -> ValidationSet:
    """Prepare a published validation frame (index id; era, features, targets), its example
    predictions (index id) and features.json. Raises `NoValidationData` when they do not fit
    together."""
    sets = features_json.get("feature_sets", {})
    feature_set = available_feature_set(sets, feature_set)
    if feature_set not in sets:
        raise NoValidationData(f"features.json of {version!r} has no feature set {feature_set!r}")
    features = list(sets[feature_set])
    missing = [c for c in ["era", target, *features] if c not in validation.columns]
    if missing:
        raise NoValidationData(
            f"the validation data of {version!r} lacks the column(s) {missing[:5]}"
        )
    ids = pd.Index(validation.index.astype(str), name="id")
    if ids.has_duplicates or len(ids) == 0:
        raise NoValidationData(f"the validation ids of {version!r} are empty or repeated")
    example = (
        example_predictions
        if isinstance(example_predictions, pd.Series)
        else example_predictions.iloc[:, 0]
    )
    example = pd.Series(example.to_numpy(np.float64), index=example.index.astype(str))
    aligned = example.reindex(ids).to_numpy(np.float64)
    targets = validation[target].to_numpy(np.float64)
    scored = np.flatnonzero(np.isfinite(targets))
    if len(scored) == 0 or np.isnan(aligned[scored]).any():
        raise NoValidationData(
            f"the example predictions of {version!r} do not cover its validation rows"
            if len(scored)
            else f"the validation data of {version!r} has no targets"
        )
    eras = validation["era"].to_numpy()[scored]
    feature_matrix = validation[features].to_numpy()[scored]
    example_scored = aligned[scored]
    scorer = ValidationEras(eras, targets[scored], example_scored, feature_matrix)
    rows = era_rows(eras)
    return ValidationSet(
        version=version,
        feature_set=feature_set,
        target=target,
        ids=ids,
        scored=scored,
        eras=eras,
        example=example_scored,
        features=feature_matrix,
        scorer=scorer,
        era_rows=rows,
        example_ranks=[rankdata(example_scored[r]) for _, r in rows],
        example_corr=scorer.score(example_scored)["corr"].to_numpy(np.float64),
    )


class ValidationLoader(Protocol):
    """The prepared validation set of a dataset version (implementations cache it)."""

    def __call__(self, version: str) -> ValidationSet: ...


class StoredValidationLoader:
    """Reads a version's published validation files from storage (``<version>/...``, as
    `tournament.datasets` publishes them) and keeps each prepared set, so `ValidationEras`
    is built once per dataset version and process. Safe to share between threads."""

    def __init__(self, storage: FileStorage, *, feature_set: str = DEFAULT_FEATURE_SET) -> None:
        self.storage, self.feature_set = storage, feature_set
        self._prepared: dict[str, ValidationSet] = {}
        self._lock = threading.Lock()

    def __call__(self, version: str) -> ValidationSet:
        with self._lock:  # one preparation at a time; later calls find it ready
            if version not in self._prepared:
                self._prepared[version] = self._load(version)
            return self._prepared[version]

    def _load(self, version: str) -> ValidationSet:
        features_json = json.loads(self._bytes(version, FEATURES_FILE))
        sets = features_json.get("feature_sets", {})
        columns = ["era", MAIN_TARGET, *sets.get(available_feature_set(sets, self.feature_set), [])]
        with self._spooled(version, VALIDATION_FILE) as handle:
            try:
                validation = pd.read_parquet(handle, columns=columns)
            except (KeyError, ValueError) as error:  # pyarrow: a missing column
                raise NoValidationData(
                    f"the validation data of {version!r} cannot be read: {error}"
                ) from error
        with self._spooled(version, EXAMPLE_FILE) as handle:
            example = pd.read_parquet(handle)
        return prepare_validation(
            version, validation, example, features_json, feature_set=self.feature_set
        )

    def _bytes(self, version: str, name: str) -> bytes:
        with self._spooled(version, name) as handle:
            return handle.read()

    @contextlib.contextmanager
    def _spooled(self, version: str, name: str) -> Iterator[IO[bytes]]:
        key = storage_key(version, name)
        with tempfile.TemporaryFile() as handle:
            try:
                with self.storage.read(key) as chunks:
                    for chunk in chunks:
                        handle.write(chunk)
            except NotFound:
                raise NoValidationData(
                    f"dataset version {version!r} has no published {name}"
                ) from None
            handle.seek(0)
            yield handle


# --- scoring one upload (pure, no database) ----------------------------------------------------


def score_diagnostics(
    validation: ValidationSet,
    data: bytes,
    filename: str,
    request_number: int,
    validator: Validator = IN_PROCESS,
) -> DiagnosticsReport:
    """The report of one upload; raises `SubmissionError` for a file that does not cover the
    validation ids (or is not a valid predictions file). The file is decoded and validated
    by `validator` (the server's validation pool, with its limits), and may hold no more
    rows than the validation ids and a margin (`row_limit`)."""
    validated = validator.validate(
        data, validation.live_ids, filename=filename, max_bytes=DEFAULT_MAX_BYTES
    )
    predictions = validated.predictions.reindex(validation.ids).to_numpy(np.float64)
    p = predictions[validation.scored]
    scores = validation.scorer.score(p)
    exposures, with_example = [], []
    for (_, rows), example_ranks in zip(validation.era_rows, validation.example_ranks, strict=True):
        exposures.append(float(max_feature_exposure(p[rows], validation.features[rows])[1][0]))
        with_example.append(_pearson(rankdata(p[rows]), example_ranks))
    corr = scores["corr"].to_numpy(np.float64)
    mmc = scores["mmc"].to_numpy(np.float64)
    fnc = scores["fnc"].to_numpy(np.float64)
    per_era = [
        EraDiagnostics(
            era=str(label),
            corr=corr[i],
            mmc=mmc[i],
            fnc=fnc[i],
            feature_exposure=exposures[i],
            corr_with_example_preds=with_example[i],
            example_corr=validation.example_corr[i],
        )
        for i, (label, _) in enumerate(validation.era_rows)
    ]
    stats = {
        name: summary_stats(values)
        for name, values in (("corr", corr), ("mmc", mmc), ("corr_plus_mmc", corr + mmc))
    }
    fnc_stats = summary_stats(fnc)
    summary = DiagnosticsSummary(
        n_eras=len(per_era),
        request_number=request_number,
        **{
            f"{name}_{stat}": values[stat]
            for name, values in stats.items()
            for stat in ("mean", "std", "sharpe")
        },
        corr_max_drawdown=stats["corr"]["max_drawdown"],
        fnc_mean=fnc_stats["mean"],
        fnc_std=fnc_stats["std"],
        fnc_sharpe=fnc_stats["sharpe"],
        max_feature_exposure=_nanmean(exposures),
        corr_with_example_preds=_nanmean(with_example),
        example_corr_mean=summary_stats(validation.example_corr)["mean"],
        corr_corr_with_example=_pearson(corr, validation.example_corr),
    )
    return DiagnosticsReport(
        rules=RULES,
        dataset_version=validation.version,
        feature_set=validation.feature_set,
        target=validation.target,
        meta_model=META_MODEL,
        request_number=request_number,
        n_rows=validated.n_rows,
        per_era=per_era,
        summary=summary,
    )


def _pearson(a: npt.ArrayLike, b: npt.ArrayLike) -> float:
    """Pearson correlation over the pairs where both are finite; NaN if either is constant."""
    x, y = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    if not keep.any():
        return float("nan")
    x, y = x[keep] - x[keep].mean(), y[keep] - y[keep].mean()
    norm = float(np.sqrt((x @ x) * (y @ y)))
    return float(x @ y) / norm if norm > 0 else float("nan")


def _nanmean(values: list[float]) -> float | None:
    finite = [v for v in values if np.isfinite(v)]
    return float(np.mean(finite)) if finite else None
