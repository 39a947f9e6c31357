"""A 2017 round's files: ``numerai_training_data.csv`` and ``numerai_tournament_data.csv``.

A `Rules2017Rounds` source, given to the round publisher (`rounds.FeedPublisher`), stores for
each round of a tournament whose ruleset publishes them (`publishes_2017_files`; the pure
frames: `data.rules2017.round_files`):

- ``<version>/numerai_training_data_<round>.csv`` and
  ``<version>/numerai_tournament_data_<round>.csv``, recorded as dataset files of those
  names; the version's ``numerai_training_data.csv`` and ``numerai_tournament_data.csv``
  rows point at the newest round's files (as ``live.parquet`` holds the newest live era).
  Every id is re-keyed for the round with a key derived from the operator's master key.
- ``operator/legacy/<version>/round_<round>_ids.parquet``: the operator's id map of the
  round's tournament rows (new id → data type, era, original id; the live rows' original
  ids are those of the round's ``live_<round>.parquet``; the validation and test rows'
  binary target; the benchmark models' probability, `data.rules2017.BenchmarkCalibration`;
  each row's concordance cluster), from which uploads are checked
  (`tournament_rows`, `rules2017_checks`) and the live rows of a submission are scored.

A round published without a source (a publisher given no dataset version) has only its
live file, and takes live-only uploads as a classic round does.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.data.benchmark import BenchmarkModels
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.release import DatasetVersion, benchmark_file
from crowdquant.data.rules2017 import (
    TOURNAMENT_FILENAME,
    TRAINING_FILENAME,
    BenchmarkCalibration,
    Rules2017FilesError,
    Rules2017RoundFiles,
    benchmark_blend,
    round_files,
    version_rows,
)
from crowdquant.data.splits import HOLDOUT, TRAIN, VALIDATION
from crowdquant.db.models import DatasetFile, Round
from crowdquant.scoring.rules2017 import SPLITS, ConcordanceClusters
from crowdquant.storage import FileStorage
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.visibility import OPERATOR_PREFIX

FILENAMES_2017 = (TRAINING_FILENAME, TOURNAMENT_FILENAME)


class Missing2017Ids(ServiceError, LookupError):  # noqa: N818
    """A 2017 round's files are recorded but its operator id map is not stored."""

    code = "missing_legacy_ids"


@dataclass(frozen=True)
class StoredRoundFile:
    """One stored file of a round, to record as a `DatasetFile` named `filename`."""

    filename: str
    storage_key: str
    size: int
    sha256: str


def round_filename(filename: str, round_number: int) -> str:
    """The round's own name of a 2017 file: ``numerai_tournament_data_<round>.csv``."""
    stem, _, suffix = filename.rpartition(".")
    return f"{stem}_{round_number}.{suffix}"


def ids_key(version: str, round_number: int) -> str:
    """Where the operator's id map of a 2017 round lives (never served)."""
    return f"{OPERATOR_PREFIX}legacy/{version}/round_{round_number}_ids.parquet"


def round_key(keys: OperatorKeys, round_number: int) -> bytes:
    """The key re-keying round `round_number`'s 2017 ids."""
    return keys.derive(f"legacy-ids:round:{round_number}")


class Rules2017Rounds:
    """Makes and stores each round's 2017 files from a dataset version (opened with its
    operator folder: the test rows are its holdout) and the round's live rows."""

    def __init__(self, version: DatasetVersion, keys: OperatorKeys) -> None:
        self.version, self.keys = version, keys

    @cached_property
    def features(self) -> list[str]:
        return list(self.version.features_json()["feature_sets"]["all"])

    @cached_property
    def base(self) -> pd.DataFrame:
        """The version's train, validation and test rows: the same in every round."""
        return version_rows(self.version)

    @cached_property
    def models(self) -> BenchmarkModels | None:
        return self.version.benchmark_models()

    @cached_property
    def calibration(self) -> BenchmarkCalibration | None:
        """The benchmark blend as a probability, fitted on the train rows' out-of-fold
        predictions; None for a version built without benchmark models."""
        path = self.version.published / benchmark_file(TRAIN)
        if self.models is None or not path.is_file():
            return None
        blend = benchmark_blend(pd.read_parquet(path))
        train = self.base[self.base["data_type"] == "train"]
        return BenchmarkCalibration.fit(
            blend.set_axis(blend.index.astype(str)),
            train["target"].astype("float64").set_axis(train.index.astype(str)),
        )

    def benchmark(self, frame: pd.DataFrame) -> pd.Series | None:
        """The benchmark models' probability of each row of `frame` (index id; era and the
        features), or None without benchmark models."""
        if self.models is None or self.calibration is None:
            return None
        found = self.calibration.probabilities(benchmark_blend(self.models.predict(frame)))
        return found.set_axis(frame.index.astype(str))

    @cached_property
    def base_benchmark(self) -> pd.Series | None:
        """The benchmark probability of the version's validation and test rows."""
        parts = [self.benchmark(self.version.frame(split)) for split in (VALIDATION, HOLDOUT)]
        return None if parts[0] is None or parts[1] is None else pd.concat(parts)

    def files(self, round_number: int, live: pd.DataFrame) -> Rules2017RoundFiles:
        benchmark = None
        live_benchmark = self.benchmark(live)
        if self.base_benchmark is not None and live_benchmark is not None:
            benchmark = pd.concat([self.base_benchmark, live_benchmark])
        return round_files(
            self.base, self.features, live, round_key(self.keys, round_number), benchmark
        )

    def store(
        self, storage: FileStorage, folder: str, version: str, round_number: int, live: pd.DataFrame
    ) -> tuple[list[StoredRoundFile], list[str]]:
        """Store the round's files (all, or none when it raises): the round's own two, the
        version's current names pointing at them, and the operator's id map (not listed).
        Returns the files to record and every key written (to delete them again)."""
        if version != self.version.version:
            raise Rules2017FilesError(
                f"the 2017 files come from dataset version {self.version.version!r}, not the"
                f" tournament's {version!r}"
            )
        made = self.files(round_number, live)
        id_map = with_clusters(made)
        contents = {
            TRAINING_FILENAME: made.training.to_csv().encode(),
            TOURNAMENT_FILENAME: made.tournament.to_csv().encode(),
        }
        buffer = io.BytesIO()
        id_map.to_parquet(buffer, engine="pyarrow", compression="zstd", index=True)
        written: list[str] = []
        stored: list[StoredRoundFile] = []
        try:
            key = ids_key(version, round_number)
            written.append(key)
            storage.write(key, buffer.getvalue())
            for name, content in contents.items():
                key = f"{folder}{round_filename(name, round_number)}"
                written.append(key)
                result = storage.write(key, content)
                sha256 = result.sha256 or hashlib.sha256(content).hexdigest()
                for filename in (round_filename(name, round_number), name):
                    stored.append(StoredRoundFile(filename, key, result.size, sha256))
        except BaseException:
            delete_all(storage, written)
            raise
        return stored, written


def with_clusters(made: Rules2017RoundFiles) -> pd.DataFrame:
    """The id map with each tournament row's concordance cluster (`cluster`): k-means fitted
    on the training and tournament features, as submission-criteria did."""
    rows = pd.concat([made.training, made.tournament])
    clusters = ConcordanceClusters.fit(rows.filter(like="feature"), rows["data_type"].to_numpy())
    id_map = made.id_map.copy()
    id_map["cluster"] = np.int64(-1)
    for split, labels in zip(
        SPLITS, (clusters.validation, clusters.test, clusters.live), strict=True
    ):
        id_map.loc[id_map["data_type"] == split, "cluster"] = labels
    return id_map


def delete_all(storage: FileStorage, keys: list[str]) -> None:
    """Delete each key, trying the rest even if one delete fails."""
    for key in keys:
        with contextlib.suppress(Exception):  # the caller re-raises the error that matters
            storage.delete(key)


def has_2017_files(session: Session, round_: Round) -> bool:
    """Whether `round_` was published with its 2017 files."""
    if not ruleset_of(round_.tournament).publishes_2017_files:
        return False
    name = round_filename(TOURNAMENT_FILENAME, round_.number)
    found = session.scalar(
        select(DatasetFile.id).where(
            DatasetFile.version == round_.dataset_version, DatasetFile.filename == name
        )
    )
    return found is not None


def tournament_rows(session: Session, storage: FileStorage, round_: Round) -> pd.DataFrame | None:
    """The operator's id map of `round_`'s tournament rows (index `id`; `data_type`, `era`,
    `original_id`), or None for a round published without 2017 files."""
    if not has_2017_files(session, round_):
        return None
    key = ids_key(round_.dataset_version, round_.number)
    if not storage.exists(key):
        raise Missing2017Ids(f"round {round_.number}'s 2017 id map is not stored at {key}")
    with storage.read(key) as chunks:
        frame = pd.read_parquet(io.BytesIO(b"".join(chunks)))
    frame.index = frame.index.astype(str)
    return frame
