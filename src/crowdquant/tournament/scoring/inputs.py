"""What a round is scored from, fixed and kept so that every score can be replayed.

Per model, the submission it is scored by; the round's live ids and features (in a round
published with 2017 files, a submission covers every tournament row under the round's own
ids, and its live rows are read out of it through the operator's id map); the
prediction matrix (cached per round as one Parquet file); the meta model, fixed at the first
pass and stored with its checksum and the weights it was blended by (the tournament's
``"meta_model": {"weights": ...}`` setting: stake at risk, or for 2017 tournaments stake
× max(0, ln 2 − test-set log-loss), `scoring.metamodel`); the benchmark blend (of the
submissions of the tournament's `benchmark_models`, or else of the benchmark models'
predictions the round published with its live era); the FNC features (the version's
`fncv3_features`, or every feature); and each
day's targets, recorded when first used. Everything the operator keeps lives under the
storage prefix `visibility.OPERATOR_PREFIX`.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.data.pipeline import FNC_FEATURE_SET
from crowdquant.db.models import (
    DatasetFile,
    MetaModel,
    Model,
    Round,
    RoundScore,
    RoundStake,
    RoundStatus,
    RoundTargets,
    Rules,
    Submission,
    SubmissionCheck,
    SubmissionStatus,
)
from crowdquant.faults import crash_point
from crowdquant.money import nmr_float
from crowdquant.scoring.metamodel import (
    STAKE_WEIGHTS,
    STAKE_X_REPUTATION_WEIGHTS,
    STAKE_X_TEST_WEIGHTS,
    stake_weighted_meta_model,
    stake_x_reputation_weights,
    stake_x_test_weights,
)
from crowdquant.scoring.similarity import NearDuplicates, near_duplicates, spearman_pairs
from crowdquant.scoring.validation import (
    LiveIds,
    validate_2017_submission,
    validate_submission,
)
from crowdquant.storage import FileStorage
from crowdquant.tournament.rules2017_files import tournament_rows
from crowdquant.tournament.scoring.targets import ScoringError
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.submissions import NoLiveFile, live_file_name
from crowdquant.tournament.visibility import OPERATOR_PREFIX

EQUAL_WEIGHTS = "equal"
FEATURES_JSON = "features.json"

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class ScoredSubmission:
    model_id: uuid.UUID
    submission_id: uuid.UUID
    late: bool
    file_key: str
    filename: str
    owner: uuid.UUID | None = None  # the model's account
    created_at: datetime | None = None
    model_name: str = ""


@dataclass(frozen=True)
class RoundInputs:
    """Everything a round's scores are computed from, rows in `ids` order (sorted)."""

    rules: Rules
    ids: pd.Index
    features: FloatArray  # (N, F)
    submissions: Sequence[ScoredSubmission]
    predictions: FloatArray  # (N, K), column k for submissions[k]
    meta_model: FloatArray | None  # (N,); None when no submission was on time
    benchmark: FloatArray | None  # (N,); None without benchmark submissions or models
    new_meta_model: MetaModel | None = None  # the row to add when this read fixed it
    benchmark_probability: FloatArray | None = None  # (N,); 2017 rounds' benchmark models


def scored_submissions(session: Session, round_: Round) -> list[ScoredSubmission]:
    """Per model, the submission it is scored by: its newest valid on-time one, else its
    first valid late one (later late uploads would change scores already stored). In the
    order of the models' names, then ids: the meta model blends them in this order, so the
    same submissions blend to the same floats in any database."""
    valid = session.execute(
        select(
            Submission.model_id,
            Submission.id,
            Submission.late,
            Submission.file_key,
            Submission.filename,
            Model.account_id,
            Submission.created_at,
            Model.name,
        )
        .join(Model, Model.id == Submission.model_id)
        .where(Submission.round_id == round_.id, Submission.status == SubmissionStatus.VALID)
        .order_by(Submission.created_at)
    )
    chosen: dict[uuid.UUID, ScoredSubmission] = {}
    for model_id, sub_id, late, file_key, filename, owner, created_at, name in valid:
        if model_id not in chosen or not late:  # oldest first
            chosen[model_id] = ScoredSubmission(
                model_id,
                sub_id,
                late,
                file_key,
                filename,
                owner=owner,
                created_at=created_at,
                model_name=name,
            )
    return sorted(chosen.values(), key=lambda scored: (scored.model_name, scored.model_id))


def _read(storage: FileStorage, key: str) -> bytes:
    with storage.read(key) as chunks:
        return b"".join(chunks)


def _live_frame(session: Session, storage: FileStorage, round_: Round) -> pd.DataFrame:
    key = session.scalar(
        select(DatasetFile.storage_key).where(
            DatasetFile.version == round_.dataset_version,
            DatasetFile.filename == live_file_name(round_),
        )
    )
    if key is None:
        raise NoLiveFile(f"round {round_.number} has no published {live_file_name(round_)}")
    frame = pd.read_parquet(io.BytesIO(_read(storage, key)))
    frame.index = frame.index.astype(str)
    return frame.sort_index()


def _published_benchmark(
    session: Session, storage: FileStorage, round_: Round, ids: pd.Index
) -> FloatArray | None:
    """The equal blend of the benchmark models' predictions the round published with its
    live era (`live_benchmark_models_<round>.parquet`), or None without that file."""
    stored = session.scalar(
        select(DatasetFile).where(
            DatasetFile.version == round_.dataset_version,
            DatasetFile.filename == f"live_benchmark_models_{round_.number}.parquet",
        )
    )
    if stored is None:
        return None
    frame = pd.read_parquet(io.BytesIO(_checked(storage, stored.storage_key, stored.sha256)))
    frame.index = frame.index.astype(str)
    columns = frame.drop(columns=["era"], errors="ignore").reindex(ids)
    if columns.shape[1] == 0:
        return None
    matrix = columns.to_numpy(np.float64)
    return stake_weighted_meta_model(matrix, np.ones(matrix.shape[1]))


def _benchmark_probability(rows_2017: pd.DataFrame | None, ids: pd.Index) -> FloatArray | None:
    """The benchmark models' probability of each live row of a round with 2017 files, from
    its id map; None where the id map has none (a version without benchmark models)."""
    if rows_2017 is None or "benchmark" not in rows_2017:
        return None
    live = rows_2017[rows_2017["data_type"] == "live"]
    found = live["benchmark"].set_axis(live["original_id"].astype(str)).reindex(ids)
    return None if found.isna().any() else found.to_numpy(np.float64)


def _fnc_features(
    session: Session, storage: FileStorage, round_: Round, live: pd.DataFrame
) -> list[str]:
    """The features FNC neutralises against: the version's `fncv3_features` set (sized to
    its universe), or every live feature for a version without one."""
    every = [c for c in live.columns if c not in ("era", "data_type")]
    key = session.scalar(
        select(DatasetFile.storage_key).where(
            DatasetFile.version == round_.dataset_version,
            DatasetFile.filename == FEATURES_JSON,
        )
    )
    if key is None:
        return every
    try:
        chosen = json.loads(_read(storage, key))["feature_sets"][FNC_FEATURE_SET]
    except (ValueError, KeyError, TypeError):
        return every
    if not isinstance(chosen, list) or not chosen or not set(chosen) <= set(every):
        return every
    return [str(c) for c in chosen]


def live_predictions(
    content: bytes, filename: str, ids: pd.Index | LiveIds, rows_2017: pd.DataFrame | None
) -> pd.Series:
    """A stored submission's predictions of the live rows, by live id (`ids`: the round's,
    or them indexed once for all its files).

    `rows_2017`: the round's 2017 id map (`rules2017_files.tournament_rows`), or None; with it the
    file covers every tournament row and its live rows are renamed to the live file's ids."""
    if rows_2017 is None:
        return validate_submission(content, ids, filename=filename, max_bytes=2**62).predictions
    validated = validate_2017_submission(
        content, rows_2017["data_type"], filename=filename, max_bytes=2**62
    )
    live = rows_2017[rows_2017["data_type"] == "live"]
    values = validated.predictions.reindex(live.index)
    return pd.Series(
        values.to_numpy(np.float64),
        index=pd.Index(live["original_id"].astype(str).to_numpy(), name="id"),
        name=values.name,
    )


def _prediction_matrix(
    storage: FileStorage,
    ids: pd.Index,
    submissions: Sequence[ScoredSubmission],
    rows_2017: pd.DataFrame | None = None,
) -> FloatArray:
    matrix = np.empty((len(ids), len(submissions)), dtype=np.float64)
    live = LiveIds(ids) if submissions and rows_2017 is None else ids  # indexed once
    for k, scored in enumerate(submissions):
        content = _read(storage, scored.file_key)
        predictions = live_predictions(content, scored.filename, live, rows_2017)
        matrix[:, k] = predictions.reindex(ids).to_numpy(np.float64)
    return matrix


def _benchmark_columns(
    session: Session, round_: Round, submissions: Sequence[ScoredSubmission]
) -> list[int]:
    names = settings_of(round_.tournament).benchmark_models
    if not names:
        return []
    benchmark_ids = set(
        session.scalars(
            select(Model.id).where(
                Model.tournament_id == round_.tournament_id, Model.name.in_(list(names))
            )
        )
    )
    return [
        k for k, sub in enumerate(submissions) if sub.model_id in benchmark_ids and not sub.late
    ]


def _frame_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", compression="zstd", index=True)
    return buffer.getvalue()


def _cache_bytes(frame: pd.DataFrame) -> bytes:
    """A frame of floats kept only to be read back (never hashed nor published): neither
    compressed nor dictionary-encoded, nor given statistics, which random floats gain
    nothing from and which cost most of the writing."""
    buffer = io.BytesIO()
    frame.to_parquet(
        buffer,
        engine="pyarrow",
        compression=None,
        index=True,
        use_dictionary=False,
        write_statistics=False,
    )
    return buffer.getvalue()


def _folder(round_: Round) -> str:
    return f"{OPERATOR_PREFIX}rounds/{round_.id.hex}/"


def _meta_model(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    round_: Round,
    ids: pd.Index,
    submissions: Sequence[ScoredSubmission],
    predictions: FloatArray,
) -> tuple[FloatArray | None, MetaModel | None]:
    """The round's stored meta model; on first use, fixed: its file stored and its row
    returned for the caller to add."""
    stored = session.scalar(select(MetaModel).where(MetaModel.round_id == round_.id))
    if stored is not None:
        return _stored_meta_model(storage, stored, ids), None
    on_time = [k for k, sub in enumerate(submissions) if not sub.late]
    if not on_time:
        return None, None
    weighting, weights = _meta_model_weights(session, round_, [submissions[k] for k in on_time])
    duplicates = _near_duplicates(
        round_, [submissions[k] for k in on_time], predictions[:, on_time], weights
    )
    for position in duplicates.dropped:
        weights[position] = 0.0
    if not weights.sum() > 0:  # only duplicates were staked: the kept ones blend equally
        weighting = EQUAL_WEIGHTS
        weights = np.array([0.0 if k in duplicates.dropped else 1.0 for k in range(len(on_time))])
    values = stake_weighted_meta_model(predictions[:, on_time], weights)
    key = f"{_folder(round_)}meta_model.parquet"
    content = _frame_bytes(pd.DataFrame({"meta_model": values}, index=ids))
    storage.write(key, content)
    crash_point("scoring:after-meta-model")
    row = MetaModel(
        round_id=round_.id,
        weighting=weighting,
        weights={
            str(submissions[k].submission_id): float(weight)
            for k, weight in zip(on_time, weights, strict=True)
        },
        duplicates=_duplicates_data([submissions[k] for k in on_time], duplicates),
        storage_key=key,
        sha256=hashlib.sha256(content).hexdigest(),
        created_at=clock.now(),
    )
    return values, row


def _near_duplicates(
    round_: Round,
    on_time: Sequence[ScoredSubmission],
    predictions: FloatArray,
    weights: FloatArray,
) -> NearDuplicates:
    """The on-time submissions that are near-duplicates (Spearman above the tournament's
    ``"duplicate_threshold"``): within one account, the one with the most weight (then the
    model's name, first in order: a choice that does not depend on who uploaded first in a
    busy minute) is kept; across accounts, pairs are flagged."""
    threshold = settings_of(round_.tournament).duplicate_threshold
    order = sorted(
        range(len(on_time)),
        key=lambda k: (-weights[k], on_time[k].model_name, on_time[k].model_id),
    )
    preference = [0.0] * len(on_time)
    for place, k in enumerate(order):
        preference[k] = -float(place)
    return near_duplicates(
        spearman_pairs(predictions, threshold),
        [sub.owner for sub in on_time],
        preference,
    )


def _duplicates_data(
    on_time: Sequence[ScoredSubmission], duplicates: NearDuplicates
) -> dict[str, Any]:
    ids = [str(sub.submission_id) for sub in on_time]
    return {
        "dropped": {ids[k]: ids[kept] for k, kept in sorted(duplicates.dropped.items())},
        "flagged": [[ids[a], ids[b], rho] for a, b, rho in duplicates.flagged],
    }


def _meta_model_weights(
    session: Session, round_: Round, on_time: Sequence[ScoredSubmission]
) -> tuple[str, FloatArray]:
    """Each on-time submission's weight: its model's stake at risk in the round (NMR), or
    equal weights when nobody staked. Under the tournament's ``"stake_x_test"`` weighting,
    the stake times max(0, ln 2 − the submission's stored test-set log-loss) (none stored:
    0); when that leaves no weight at all, the stakes (or equal weights) blend instead. Under
    ``"stake_x_reputation"``, the stake times the trust its model's CORR reputation at the
    round's close earns (`_corr_reputations`, `scoring.metamodel.reputation_trust`)."""
    at_risk = dict(
        session.execute(
            select(RoundStake.model_id, RoundStake.at_risk).where(RoundStake.round_id == round_.id)
        ).all()
    )
    stakes = np.array([nmr_float(at_risk.get(sub.model_id, 0)) for sub in on_time])
    weighting = settings_of(round_.tournament).meta_model.weights
    if weighting == STAKE_X_TEST_WEIGHTS:
        weights = stake_x_test_weights(stakes, _test_loglosses(session, on_time))
        if weights.sum() > 0:
            return STAKE_X_TEST_WEIGHTS, weights
    if weighting == STAKE_X_REPUTATION_WEIGHTS and stakes.sum() > 0:
        reputations = _corr_reputations(session, round_, on_time)
        return STAKE_X_REPUTATION_WEIGHTS, stake_x_reputation_weights(stakes, reputations)
    if stakes.sum() > 0:
        return STAKE_WEIGHTS, stakes
    return EQUAL_WEIGHTS, np.ones(len(on_time))


def _corr_reputations(
    session: Session, round_: Round, on_time: Sequence[ScoredSubmission]
) -> FloatArray:
    """Each submission's model's CORR reputation when the round closed: the mean final CORR
    of its on-time submissions over the tournament's rounds resolved (due to resolve) within
    `reputation_days` before the close; NaN where it has none. Read from the stored scores
    and summed exactly (`math.fsum`), not in the order the database reads the rows (that of
    their random ids), so the same books give the same weights to the last bit."""
    close = round_.close_time
    since = close - timedelta(days=settings_of(round_.tournament).reputation_days)
    last_day = (
        select(RoundScore.round_id, func.max(RoundScore.day).label("day"))
        .join(Round, Round.id == RoundScore.round_id)
        .where(
            Round.tournament_id == round_.tournament_id,
            Round.status == RoundStatus.RESOLVED,
            Round.resolve_time <= close,
            Round.resolve_time > since,
            RoundScore.metric == "corr",
        )
        .group_by(RoundScore.round_id)
        .subquery()
    )
    finals: dict[uuid.UUID, list[float]] = {}
    for model_id, value in session.execute(
        select(RoundScore.model_id, RoundScore.value)
        .join(
            last_day,
            (last_day.c.round_id == RoundScore.round_id) & (last_day.c.day == RoundScore.day),
        )
        .where(
            RoundScore.metric == "corr",
            RoundScore.late.is_(False),
            RoundScore.value.is_not(None),
            RoundScore.model_id.in_({sub.model_id for sub in on_time}),
        )
    ):
        if value is not None:
            finals.setdefault(model_id, []).append(value)
    means = {model_id: math.fsum(values) / len(values) for model_id, values in finals.items()}
    return np.array([means.get(sub.model_id, np.nan) for sub in on_time], dtype=np.float64)


def _test_loglosses(session: Session, on_time: Sequence[ScoredSubmission]) -> FloatArray:
    """Each submission's stored test-set log-loss (the operator's), NaN where none is."""
    found = dict(
        session.execute(
            select(SubmissionCheck.submission_id, SubmissionCheck.value).where(
                SubmissionCheck.submission_id.in_([sub.submission_id for sub in on_time]),
                SubmissionCheck.metric == "test_logloss",
            )
        ).all()
    )
    values = [found.get(sub.submission_id) for sub in on_time]
    return np.array([np.nan if value is None else value for value in values], dtype=np.float64)


def stored_meta_model(session: Session, storage: FileStorage, round_: Round) -> pd.Series | None:
    """The round's fixed meta model by id (operator only), or None before it is fixed."""
    stored = session.scalar(select(MetaModel).where(MetaModel.round_id == round_.id))
    if stored is None:
        return None
    frame = pd.read_parquet(io.BytesIO(_checked(storage, stored.storage_key, stored.sha256)))
    return frame["meta_model"].rename(index=str)


def _checked(storage: FileStorage, key: str, sha256: str) -> bytes:
    content = _read(storage, key)
    if hashlib.sha256(content).hexdigest() != sha256:
        raise ScoringError(f"the stored file {key} fails its checksum")
    return content


def _stored_meta_model(storage: FileStorage, stored: MetaModel, ids: pd.Index) -> FloatArray:
    frame = pd.read_parquet(io.BytesIO(_checked(storage, stored.storage_key, stored.sha256)))
    return frame["meta_model"].reindex(ids).to_numpy(np.float64)


def _cached_prediction_matrix(
    storage: FileStorage,
    round_: Round,
    ids: pd.Index,
    submissions: Sequence[ScoredSubmission],
    rows_2017: pd.DataFrame | None = None,
) -> FloatArray:
    """The prediction matrix, from the round's cache of already-read submissions.

    Reading and validating an upload costs about 0.1 s (6,000 rows), so a round of 10,000
    submissions would spend most of each daily pass re-reading files: the matrix is kept as
    one Parquet file (columns: submission ids) and only new submissions are read. It is a
    cache, not a record: `replay_round` reads the submission files themselves.
    """
    key = f"{_folder(round_)}predictions.parquet"
    wanted = [str(sub.submission_id) for sub in submissions]
    cached = pd.DataFrame(index=ids)
    if storage.exists(key):
        frame = pd.read_parquet(io.BytesIO(_read(storage, key)))
        if frame.index.equals(ids):
            cached = frame[[column for column in frame.columns if column in wanted]]
    missing = [sub for sub in submissions if str(sub.submission_id) not in cached.columns]
    if missing:
        new = _prediction_matrix(storage, ids, missing, rows_2017)
        columns = [str(sub.submission_id) for sub in missing]
        cached = pd.concat([cached, pd.DataFrame(new, index=ids, columns=columns)], axis=1)
        storage.write(key, _cache_bytes(cached))
    return np.ascontiguousarray(cached[wanted].to_numpy(np.float64))


class InputsCache:
    """Scoring rounds' inputs kept in memory between passes: at most `rounds` rounds and,
    given `max_bytes`, at most that many bytes of their arrays, the least recently scored
    forgotten first (inputs larger than `max_bytes` alone are not kept).

    An entry serves a pass only while the round's scored submissions and benchmark columns
    are those it was read with: a round's live file, its submissions' files and its fixed
    meta model never change once stored. Inputs that fixed the meta model are kept pending
    (their row may yet roll back): they serve no pass until `confirm` says that row
    committed, and are then kept as if read from storage. Work derived from kept inputs (a
    scorer's preparation) may be kept beside them, within the same bounds (`keep_derived`).
    """

    def __init__(self, rounds: int = 64, max_bytes: int | None = None) -> None:
        self.rounds, self.max_bytes = rounds, max_bytes
        self._entries: OrderedDict[uuid.UUID, tuple[tuple[object, ...], RoundInputs]] = (
            OrderedDict()
        )
        self._bytes: dict[uuid.UUID, int] = {}
        self._derived: dict[uuid.UUID, dict[str, object]] = {}
        self._pending: set[uuid.UUID] = set()  # kept inputs whose meta model may roll back

    def get(self, round_id: uuid.UUID, key: tuple[object, ...]) -> RoundInputs | None:
        entry = self._entries.get(round_id)
        if entry is None or entry[0] != key or round_id in self._pending:
            return None
        self._entries.move_to_end(round_id)
        return entry[1]

    def put(
        self,
        round_id: uuid.UUID,
        key: tuple[object, ...],
        inputs: RoundInputs,
        *,
        pending: bool = False,
    ) -> None:
        """Keep `inputs`; `pending`: they fixed the meta model, and serve no pass before
        `confirm`."""
        self.forget(round_id)
        size = 0 if self.max_bytes is None else _size(inputs)
        if self.max_bytes is not None and size > self.max_bytes:
            return
        self._entries[round_id], self._bytes[round_id] = (key, inputs), size
        if pending:
            self._pending.add(round_id)
        self._within_bounds()

    def confirm(self, round_id: uuid.UUID) -> None:
        """The meta model that the round's pending inputs fixed has committed: they serve
        the next passes, as the stored meta model would (the row is not added again)."""
        if round_id not in self._pending:
            return
        self._pending.discard(round_id)
        entry = self._entries.get(round_id)
        if entry is not None:
            self._entries[round_id] = (entry[0], replace(entry[1], new_meta_model=None))

    def derived(self, round_id: uuid.UUID, inputs: RoundInputs, name: str) -> object | None:
        """What `keep_derived` kept under `name` beside these very `inputs`, or None."""
        if not self._holds(round_id, inputs):
            return None
        return self._derived.get(round_id, {}).get(name)

    def keep_derived(
        self, round_id: uuid.UUID, inputs: RoundInputs, name: str, value: object, size: int
    ) -> None:
        """Keep `value`, worked out from the kept `inputs` of `round_id` and holding about
        `size` bytes, for as long as they are kept; not kept where the inputs are not (or
        no longer) those kept, nor where the entry would alone exceed the bound in bytes."""
        if not self._holds(round_id, inputs):
            return
        if self.max_bytes is not None:
            if self._bytes[round_id] + size > self.max_bytes:
                return
            self._bytes[round_id] += size
        self._derived.setdefault(round_id, {})[name] = value
        self._within_bounds()

    def forget(self, round_id: uuid.UUID) -> None:
        self._entries.pop(round_id, None)
        self._bytes.pop(round_id, None)
        self._derived.pop(round_id, None)
        self._pending.discard(round_id)

    def _holds(self, round_id: uuid.UUID, inputs: RoundInputs) -> bool:
        entry = self._entries.get(round_id)
        return entry is not None and entry[1] is inputs

    def _within_bounds(self) -> None:
        """Forget the least recently scored rounds until within the bounds."""
        while len(self._entries) > self.rounds or (
            self.max_bytes is not None and sum(self._bytes.values()) > self.max_bytes
        ):
            self.forget(next(iter(self._entries)))


def _size(inputs: RoundInputs) -> int:
    """The bytes of an entry's arrays (the rest is small beside them)."""
    arrays = (inputs.predictions, inputs.features, inputs.meta_model, inputs.benchmark)
    return sum(array.nbytes for array in arrays if isinstance(array, np.ndarray))


def round_inputs(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    round_: Round,
    *,
    from_files: bool = False,
    cache: InputsCache | None = None,
    submissions: list[ScoredSubmission] | None = None,
) -> RoundInputs:
    """Read (and, the first time, fix and store) everything the round is scored from.

    `from_files` reads every submission file again instead of the round's cached matrix;
    `cache` keeps the inputs in memory for the round's next pass; `submissions`: the
    round's `scored_submissions`, when the caller has just read them."""
    if submissions is None:
        submissions = scored_submissions(session, round_)
    benchmark_columns = _benchmark_columns(session, round_, submissions)
    key = (*(sub.submission_id for sub in submissions), "benchmark", *benchmark_columns)
    if cache is not None and not from_files:
        kept = cache.get(round_.id, key)
        if kept is not None:
            return kept
    live = _live_frame(session, storage, round_)
    ids = pd.Index(live.index, name="id")
    feature_columns = _fnc_features(session, storage, round_, live)
    rows_2017 = tournament_rows(session, storage, round_)
    if from_files:
        predictions = _prediction_matrix(storage, ids, submissions, rows_2017)
    else:
        predictions = _cached_prediction_matrix(storage, round_, ids, submissions, rows_2017)
    meta, fixed = _meta_model(session, clock, storage, round_, ids, submissions, predictions)
    if benchmark_columns:
        benchmark: FloatArray | None = stake_weighted_meta_model(
            predictions[:, benchmark_columns], np.ones(len(benchmark_columns))
        )
    else:
        benchmark = _published_benchmark(session, storage, round_, ids)
    inputs = RoundInputs(
        rules=round_.tournament.rules,
        ids=ids,
        features=live[feature_columns].to_numpy(np.float64),
        submissions=submissions,
        predictions=predictions,
        meta_model=meta,
        benchmark=benchmark,
        new_meta_model=fixed,
        benchmark_probability=_benchmark_probability(rows_2017, ids),
    )
    if cache is not None and not from_files:
        cache.put(round_.id, key, inputs, pending=fixed is not None)
    return inputs


def store_targets(
    clock: Clock,
    storage: FileStorage,
    round_: Round,
    day: int,
    frame: pd.DataFrame,
) -> RoundTargets:
    """Store the day's targets; the row recording them, for the caller to add."""
    content = _frame_bytes(frame)
    key = f"{_folder(round_)}targets_day_{day:03d}.parquet"
    storage.write(key, content)
    crash_point("scoring:after-targets")
    return RoundTargets(
        round_id=round_.id,
        day=day,
        storage_key=key,
        sha256=hashlib.sha256(content).hexdigest(),
        recorded_at=clock.now(),
    )


def stored_targets(session: Session, storage: FileStorage, round_: Round, day: int) -> pd.DataFrame:
    """The targets of `day` as recorded when the round was scored (operator only)."""
    row = session.scalar(
        select(RoundTargets).where(RoundTargets.round_id == round_.id, RoundTargets.day == day)
    )
    if row is None:
        raise ScoringError(f"round {round_.number} has no recorded targets for day {day}")
    return pd.read_parquet(io.BytesIO(_checked(storage, row.storage_key, row.sha256)))


def days_recorded(session: Session, round_: Round) -> int:
    """The last day of the horizon whose targets the round has recorded (0: none yet)."""
    last = session.scalar(
        select(func.max(RoundTargets.day)).where(RoundTargets.round_id == round_.id)
    )
    return int(last or 0)
