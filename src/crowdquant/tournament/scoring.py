"""Daily scoring of closed rounds, kept so that every number can be replayed.

Once a round is closed, the market reveals its live era's targets day by day. For each new
day, `score_round` scores every submission of the round in one batch (`PreparedRound`) and
stores one `RoundScore` per (model, metric, day) with the scoring version. The inputs are
kept beside the scores, in storage under the operator-only prefix: the meta model fixed when
scoring starts, and the targets of each day as first seen. `replay_round` recomputes every
stored score from those inputs and the stored submission files and lists what differs.

Which submission a model is scored by: its counting one (newest valid, on time) or, if it
has none, its first valid late one, scored and marked late. Every score of a submission
depends only on it and on inputs fixed at close (meta model, benchmark, the on-time set for
originality), so a late arrival changes no stored figure. The meta model blends the
counting submissions with equal weights (stakes weigh them once staking exists). BMC is
measured against the blend of the tournament's benchmark models (the `benchmark_models`
setting: model names), when they submitted.

Metrics, by the tournament's rules:

- classic: day 0 (needs no target) `cwmm`, and `max_corr_others` / `mean_corr_others`
  (originality, against the on-time submissions); each day
  `corr`, `mmc`, `fnc` and `bmc` (the last two with features and benchmarks);
- legacy2017: day 0 the same similarity figures and `originality_2017` (the seeds' gate: 1
  original, 0 not); each day `logloss` on the binary target (residual return above the
  era's median) and `corr`.

Functions work inside the caller's transaction: they flush, never commit.
"""

from __future__ import annotations

import hashlib
import io
import math
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.data.feed import LiveEra, MarketFeed
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import MAIN_TARGET
from crowdquant.db.models import (
    DatasetFile,
    MetaModel,
    Model,
    Round,
    RoundScore,
    RoundStatus,
    RoundTargets,
    Rules,
    Submission,
    SubmissionStatus,
)
from crowdquant.scoring import SCORING_VERSION
from crowdquant.scoring.legacy import logloss_batch, originality_round
from crowdquant.scoring.metamodel import stake_weighted_meta_model
from crowdquant.scoring.round import PreparedRound
from crowdquant.scoring.similarity import cwmm_scores, originality_against
from crowdquant.scoring.validation import validate_submission
from crowdquant.storage import FileStorage
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rounds import same_day
from crowdquant.tournament.submissions import NoLiveFile, live_file_name
from crowdquant.tournament.visibility import OPERATOR_PREFIX

RESIDUAL = "residual_return"
EQUAL_WEIGHTS = "equal"
BENCHMARK_SETTING = "benchmark_models"

FloatArray = npt.NDArray[np.float64]


class ScoringError(ServiceError):
    code = "scoring_error"


# --- where targets come from -----------------------------------------------------------------


class TargetSource(Protocol):
    """The market's side of scoring: how far a round's horizon has run, and its targets."""

    @property
    def horizon(self) -> int:
        """Days in the full horizon: day `horizon` gives the final target."""
        ...

    def days_known(self, round_: Round, now: datetime) -> int:
        """How many days of the round's horizon the market has closed by `now` (0..horizon)."""
        ...

    def targets(self, round_: Round, day: int) -> pd.DataFrame:
        """Index id; columns `target` and `residual_return` after `day` days."""
        ...


class FeedTargets:
    """Targets from the `MarketFeed` that published the round's live era.

    `market_date` is the publisher's mapping from calendar to market dates; a day of the
    horizon counts as known once the market date of the day before today has passed it.
    """

    def __init__(self, feed: MarketFeed, market_date: Callable[[date], date] = same_day) -> None:
        self.feed, self.market_date = feed, market_date
        self._live: dict[uuid.UUID, LiveEra] = {}

    @property
    def horizon(self) -> int:
        return self.feed.config.targets.horizon

    @property
    def lag(self) -> int:
        """Trading days from an era's close to the first day its target counts."""
        return self.feed.config.targets.lag

    def live_era(self, round_: Round) -> LiveEra:
        """The round's live era as published, with its operator-only tickers and betas."""
        if round_.market_date is None:
            raise ScoringError(f"round {round_.number} does not record its market date")
        if round_.id not in self._live:
            self._live[round_.id] = self.feed.live_era(
                round_.number, round_.live_era, pd.Timestamp(round_.market_date)
            )
        return self._live[round_.id]

    def as_of(self, now: datetime) -> pd.Timestamp:
        """The last market day whose close is known at `now` (the day before, mapped)."""
        return pd.Timestamp(self.market_date((now - timedelta(days=1)).date()))

    def panel_known(self, now: datetime) -> Panel:
        """The market as known at `now` (operator only: real tickers and prices)."""
        return self.feed.market.panel_through(self.as_of(now))

    def trading_day_after(self, day: date, offset: int) -> date:
        return self.feed.market.trading_day_after(pd.Timestamp(day), offset).date()

    def days_known(self, round_: Round, now: datetime) -> int:
        return self.feed.days_known(self.live_era(round_), self.as_of(now))

    def targets(self, round_: Round, day: int) -> pd.DataFrame:
        frame = self.feed.targets(self.live_era(round_), day)
        return frame[[MAIN_TARGET, RESIDUAL]]


# --- inputs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoredSubmission:
    model_id: uuid.UUID
    submission_id: uuid.UUID
    late: bool
    file_key: str
    filename: str
    owner: uuid.UUID | None = None  # the model's account
    created_at: datetime | None = None


@dataclass(frozen=True)
class RoundInputs:
    """Everything a round's scores are computed from, rows in `ids` order (sorted)."""

    rules: Rules
    ids: pd.Index
    features: FloatArray  # (N, F)
    submissions: Sequence[ScoredSubmission]
    predictions: FloatArray  # (N, K), column k for submissions[k]
    meta_model: FloatArray | None  # (N,); None when no submission was on time
    benchmark: FloatArray | None  # (N,); None without benchmark submissions
    new_meta_model: MetaModel | None = None  # the row to add when this read fixed it


@dataclass(frozen=True)
class ScoreValue:
    submission: ScoredSubmission
    metric: str
    day: int
    value: float | None


def scored_submissions(session: Session, round_: Round) -> list[ScoredSubmission]:
    """Per model, the submission it is scored by, by model id: its newest valid on-time one,
    else its first valid late one (later late uploads would change scores already stored)."""
    valid = session.execute(
        select(Submission, Model.account_id)
        .join(Model, Model.id == Submission.model_id)
        .where(Submission.round_id == round_.id, Submission.status == SubmissionStatus.VALID)
        .order_by(Submission.created_at)
    )
    chosen: dict[uuid.UUID, tuple[Submission, uuid.UUID]] = {}
    for submission, owner in valid:  # oldest first
        if submission.model_id not in chosen or not submission.late:
            chosen[submission.model_id] = (submission, owner)
    return [
        ScoredSubmission(
            sub.model_id,
            sub.id,
            sub.late,
            sub.file_key,
            sub.filename,
            owner=owner,
            created_at=sub.created_at,
        )
        for _, (sub, owner) in sorted(chosen.items())
    ]


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


def _prediction_matrix(
    storage: FileStorage, ids: pd.Index, submissions: Sequence[ScoredSubmission]
) -> FloatArray:
    matrix = np.empty((len(ids), len(submissions)), dtype=np.float64)
    for k, scored in enumerate(submissions):
        validated = validate_submission(
            _read(storage, scored.file_key), ids, filename=scored.filename, max_bytes=2**62
        )
        matrix[:, k] = validated.predictions.reindex(ids).to_numpy(np.float64)
    return matrix


def _benchmark_columns(
    session: Session, round_: Round, submissions: Sequence[ScoredSubmission]
) -> list[int]:
    names = round_.tournament.settings.get(BENCHMARK_SETTING) or []
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
    weights = np.ones(len(on_time))
    values = stake_weighted_meta_model(predictions[:, on_time], weights)
    key = f"{_folder(round_)}meta_model.parquet"
    content = _frame_bytes(pd.DataFrame({"meta_model": values}, index=ids))
    storage.write(key, content)
    row = MetaModel(
        round_id=round_.id,
        weighting=EQUAL_WEIGHTS,
        weights={str(submissions[k].submission_id): 1.0 for k in on_time},
        storage_key=key,
        sha256=hashlib.sha256(content).hexdigest(),
        created_at=clock.now(),
    )
    return values, row


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
    storage: FileStorage, round_: Round, ids: pd.Index, submissions: Sequence[ScoredSubmission]
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
        new = _prediction_matrix(storage, ids, missing)
        columns = [str(sub.submission_id) for sub in missing]
        cached = pd.concat([cached, pd.DataFrame(new, index=ids, columns=columns)], axis=1)
        storage.write(key, _frame_bytes(cached))
    return np.ascontiguousarray(cached[wanted].to_numpy(np.float64))


def round_inputs(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    round_: Round,
    *,
    from_files: bool = False,
) -> RoundInputs:
    """Read (and, the first time, fix and store) everything the round is scored from.

    `from_files` reads every submission file again instead of the round's cached matrix."""
    live = _live_frame(session, storage, round_)
    ids = pd.Index(live.index, name="id")
    feature_columns = [c for c in live.columns if c not in ("era", "data_type")]
    submissions = scored_submissions(session, round_)
    if from_files:
        predictions = _prediction_matrix(storage, ids, submissions)
    else:
        predictions = _cached_prediction_matrix(storage, round_, ids, submissions)
    meta, fixed = _meta_model(session, clock, storage, round_, ids, submissions, predictions)
    benchmark_columns = _benchmark_columns(session, round_, submissions)
    benchmark = (
        stake_weighted_meta_model(
            predictions[:, benchmark_columns], np.ones(len(benchmark_columns))
        )
        if benchmark_columns
        else None
    )
    return RoundInputs(
        rules=round_.tournament.rules,
        ids=ids,
        features=live[feature_columns].to_numpy(np.float64),
        submissions=submissions,
        predictions=predictions,
        meta_model=meta,
        benchmark=benchmark,
        new_meta_model=fixed,
    )


# --- computing -------------------------------------------------------------------------------


def _values(
    inputs: RoundInputs, metric: str, day: int, values: Iterable[float]
) -> list[ScoreValue]:
    return [
        ScoreValue(sub, metric, day, None if math.isnan(v) else float(v))
        for sub, v in zip(inputs.submissions, values, strict=True)
    ]


def similarity_scores(inputs: RoundInputs) -> list[ScoreValue]:
    """Day 0: the scores that need no target."""
    if not inputs.submissions:
        return []
    out: list[ScoreValue] = []
    if inputs.meta_model is not None:
        out += _values(inputs, "cwmm", 0, cwmm_scores(inputs.predictions, inputs.meta_model))
    on_time = [k for k, sub in enumerate(inputs.submissions) if not sub.late]
    similarity = originality_against(inputs.predictions, on_time)
    out += _values(inputs, "max_corr_others", 0, similarity.max_corr)
    out += _values(inputs, "mean_corr_others", 0, similarity.mean_corr)
    if inputs.rules is Rules.LEGACY2017:
        out += _values(inputs, "originality_2017", 0, _originality_2017(inputs))
    return out


def _originality_2017(inputs: RoundInputs) -> FloatArray:
    """The 2017 originality gate, 1 (original) or 0: each submission against the earlier
    ones of other accounts that were judged original (`scoring.legacy.originality_round`),
    on-time submissions first, each group in upload order, so a late arrival changes no one
    else's verdict."""
    order = sorted(
        range(len(inputs.submissions)),
        key=lambda k: (inputs.submissions[k].late, inputs.submissions[k].created_at or 0, k),
    )
    owners = [inputs.submissions[k].owner or inputs.submissions[k].model_id for k in order]
    verdicts = originality_round(inputs.predictions[:, order], owners)
    passed = np.empty(len(order), dtype=np.float64)
    passed[order] = [1.0 if verdict.original else 0.0 for verdict in verdicts]
    return passed


class DailyScorer:
    """Scores a round's inputs against any day's targets; the costly preparation runs once."""

    def __init__(self, inputs: RoundInputs) -> None:
        self.inputs = inputs
        self._main: PreparedRound | None = None
        self._benchmark: PreparedRound | None = None

    def _prepared(self) -> PreparedRound:
        if self._main is None:
            inputs = self.inputs
            # Without a meta model MMC is not stored; any non-constant vector stands in.
            meta = inputs.meta_model
            if meta is None:
                meta = np.arange(len(inputs.ids), dtype=np.float64)
            self._main = PreparedRound(
                inputs.predictions, inputs.ids, meta, features=inputs.features
            )
        return self._main

    def _bmc(self, targets: pd.Series) -> FloatArray:
        assert self.inputs.benchmark is not None
        if self._benchmark is None:
            self._benchmark = PreparedRound(
                self.inputs.predictions, self.inputs.ids, self.inputs.benchmark
            )
        return self._benchmark.score(targets).mmc

    def scores(self, day: int, targets: pd.DataFrame) -> list[ScoreValue]:
        inputs = self.inputs
        if not inputs.submissions:
            return []
        target = targets[MAIN_TARGET].astype(np.float64)
        scored = self._prepared().score(target)
        out = _values(inputs, "corr", day, scored.corr)
        if inputs.rules is Rules.LEGACY2017:
            return out + _values(inputs, "logloss", day, self._logloss(targets))
        if inputs.meta_model is not None:
            out += _values(inputs, "mmc", day, scored.mmc)
        if scored.fnc is not None:
            out += _values(inputs, "fnc", day, scored.fnc)
        if inputs.benchmark is not None:
            out += _values(inputs, "bmc", day, self._bmc(target))
        return out

    def _logloss(self, targets: pd.DataFrame) -> FloatArray:
        residual = targets[RESIDUAL].reindex(self.inputs.ids)
        known = residual.notna().to_numpy()
        binary = (residual[known] > residual[known].median()).to_numpy(np.float64)
        return logloss_batch(self.inputs.predictions[known], binary)


# --- storing ---------------------------------------------------------------------------------


def _store_targets(
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


@dataclass(frozen=True)
class ScoringUpdate:
    round: int
    days: list[int]
    """The days (1…) that got new rows."""
    scores: int
    """(submission, day) pairs added, day 0 included."""

    def __str__(self) -> str:
        days = ", ".join(map(str, self.days)) or "0"
        return f"round {self.round}: {self.scores} new daily scores (days {days})"


def score_round(
    session: Session, clock: Clock, storage: FileStorage, round_: Round, source: TargetSource
) -> ScoringUpdate | None:
    """Store every score of `round_` the market has revealed and that is not stored yet.

    Only a round that is scoring is scored. Each pass scores all the round's scored
    submissions together, as `replay_round` does, and adds the rows missing: the new days,
    and every day so far for a late submission that arrived since. Returns what was added,
    or None if nothing was due (decided from the database, without reading any file).

    Every row is added at the end, after the computing: on SQLite the database's write lock
    is taken only then, so the web app's writes never wait for a round's scoring.
    """
    if round_.status is not RoundStatus.SCORING:
        return None
    submissions = scored_submissions(session, round_)
    known = source.days_known(round_, clock.now())
    stored = {
        (submission_id, day)
        for submission_id, day in session.execute(
            select(RoundScore.submission_id, RoundScore.day).where(RoundScore.round_id == round_.id)
        )
    }
    missing = {
        day: [sub for sub in submissions if (sub.submission_id, day) not in stored]
        for day in range(known + 1)
    }
    missing = {day: subs for day, subs in missing.items() if subs}
    recorded = set(
        session.scalars(select(RoundTargets.day).where(RoundTargets.round_id == round_.id))
    )
    new_days = [day for day in range(1, known + 1) if day not in recorded]
    if not missing and not new_days:
        return None
    inputs = round_inputs(session, clock, storage, round_)
    new_rows: list[MetaModel | RoundTargets | RoundScore] = []
    if inputs.new_meta_model is not None:
        new_rows.append(inputs.new_meta_model)
    values: list[ScoreValue] = similarity_scores(inputs) if 0 in missing else []
    scorer = DailyScorer(inputs)
    for day in range(1, known + 1):
        if day in recorded:
            if day not in missing:
                continue
            targets = stored_targets(session, storage, round_, day)
        else:
            targets = source.targets(round_, day)
            new_rows.append(_store_targets(clock, storage, round_, day, targets))
        values += scorer.scores(day, targets)
    wanted = {(sub.submission_id, day) for day, subs in missing.items() for sub in subs}
    added = [v for v in values if (v.submission.submission_id, v.day) in wanted]
    new_rows += _score_rows(round_, clock.now(), added)
    session.add_all(new_rows)
    session.flush()
    return ScoringUpdate(round_.number, sorted(d for d in missing if d > 0), len(wanted))


def _score_rows(round_: Round, now: datetime, values: Iterable[ScoreValue]) -> list[RoundScore]:
    return [
        RoundScore(
            round_id=round_.id,
            model_id=value.submission.model_id,
            submission_id=value.submission.submission_id,
            metric=value.metric,
            day=value.day,
            value=value.value,
            late=value.submission.late,
            scoring_version=SCORING_VERSION,
            computed_at=now,
        )
        for value in values
    ]


# --- replay ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    model_id: uuid.UUID
    metric: str
    day: int
    stored: float | None
    replayed: float | None

    def __str__(self) -> str:
        return (
            f"model {self.model_id} {self.metric} day {self.day}:"
            f" stored {self.stored!r}, replayed {self.replayed!r}"
        )


def round_scores(session: Session, round_: Round) -> list[RoundScore]:
    """Every stored score of `round_` (operator view: no visibility filter)."""
    return list(session.scalars(select(RoundScore).where(RoundScore.round_id == round_.id)))


def replay_round(
    session: Session, clock: Clock, storage: FileStorage, round_: Round
) -> list[Difference]:
    """Recompute every stored score of `round_` from its stored inputs; the differences.

    Uses the stored meta model and recorded targets, and re-reads every scored submission
    file. An empty list means the round reproduces exactly.
    """
    stored = {
        (row.model_id, row.metric, row.day): row.value for row in round_scores(session, round_)
    }
    inputs = round_inputs(session, clock, storage, round_, from_files=True)
    days = sorted({day for (_, _, day) in stored if day > 0})
    values = similarity_scores(inputs) if any(d == 0 for (_, _, d) in stored) else []
    scorer = DailyScorer(inputs)
    for day in days:
        values += scorer.scores(day, stored_targets(session, storage, round_, day))
    replayed = {(v.submission.model_id, v.metric, v.day): v.value for v in values}
    return [
        Difference(model, metric, day, stored.get(key), replayed.get(key))
        for key in sorted(stored.keys() | replayed.keys(), key=str)
        for (model, metric, day) in [key]
        if stored.get(key) != replayed.get(key)
    ]
