"""Scoring a round as the market moves, and replaying it from what was kept."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Dialect, Table, func, insert, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.base import time_ordered_ids
from crowdquant.db.models import MetaModel, Round, RoundScore, RoundStatus, RoundTargets
from crowdquant.faults import crash_point
from crowdquant.scoring import SCORING_VERSION
from crowdquant.storage import FileStorage
from crowdquant.tournament.scoring.daily import DailyScorer, ScoreValue, similarity_scores
from crowdquant.tournament.scoring.inputs import (
    InputsCache,
    RoundInputs,
    ScoredSubmission,
    round_inputs,
    scored_submissions,
    store_targets,
    stored_targets,
)
from crowdquant.tournament.scoring.progress import Complete
from crowdquant.tournament.scoring.targets import TargetSource

SCORES = cast(Table, RoundScore.__table__)
"""The score rows' table, inserted into without the ORM's per-row work."""


@dataclass(frozen=True)
class ScoringUpdate:
    round: int
    days: list[int]
    """The days (1…) that got new rows."""
    scores: int
    """(submission, day) pairs added, day 0 included."""
    rows: int = 0
    """Score rows added (a pair holds one per metric)."""
    target_days: int = 0
    """Days of targets recorded."""
    known: int = 0
    """The days the market had revealed: the round's scores are now complete through it."""

    def __str__(self) -> str:
        days = ", ".join(map(str, self.days)) or "0"
        return f"round {self.round}: {self.scores} new daily scores (days {days})"


@dataclass(frozen=True)
class ScoringPass:
    """A round's pass, computed and not written yet: its files are stored, its rows not."""

    round_id: uuid.UUID
    rows: list[MetaModel | RoundTargets]
    """The meta model fixed by this pass, if it was, and each day's targets recorded."""
    scores: ScoreInsert
    """The score rows to insert, ready for the driver (made before the writing transaction,
    which then holds the write lock only for the insert)."""
    update: ScoringUpdate


def score_round(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    round_: Round,
    source: TargetSource,
    cache: InputsCache | None = None,
    complete: Complete | None = None,
) -> ScoringUpdate | None:
    """Store every score of `round_` the market has revealed and that is not stored yet.

    Only a round that is scoring is scored. Each pass scores all the round's scored
    submissions together, as `replay_round` does, and adds the rows missing: the new days,
    and every day so far for a late submission that arrived since. Returns what was added,
    or None if nothing was due (decided from the database, without reading any file).
    `cache` keeps the round's inputs in memory from one pass to the next. `complete`: what
    the round's last pass left, when its counts show nothing changed since
    (`progress.ScoringMemory`); then only the days after it are scored, without searching
    the stored scores for gaps.

    Every row is added at the end, after the computing: on SQLite the database's write lock
    is taken only then, so the web app's writes never wait for a round's scoring.
    """
    scoring = compute_round(session, clock, storage, round_, source, cache, complete)
    if scoring is None:
        return None
    write_scores(session, [scoring])
    return scoring.update


def compute_round(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    round_: Round,
    source: TargetSource,
    cache: InputsCache | None = None,
    complete: Complete | None = None,
) -> ScoringPass | None:
    """`score_round`'s pass up to its writes: the files stored, the rows to add returned
    (for `write_scores`, in this transaction or a later one); None if nothing was due."""
    if round_.status is not RoundStatus.SCORING:
        return None
    submissions = scored_submissions(session, round_)
    known = source.days_known(round_, clock.now())
    if complete is not None:
        if known <= complete.day:
            return None
        later = range(complete.day + 1, known + 1)
        missing = {day: list(submissions) for day in later if submissions}
        recorded = set(range(1, complete.day + 1))
    else:
        missing = _missing_scores(session, round_, submissions, known)
        recorded = set(
            session.scalars(select(RoundTargets.day).where(RoundTargets.round_id == round_.id))
        )
    new_days = [day for day in range(1, known + 1) if day not in recorded]
    if not missing and not new_days:
        return None
    inputs = round_inputs(session, clock, storage, round_, cache=cache, submissions=submissions)
    new_rows: list[MetaModel | RoundTargets] = []
    target_days = 0
    if inputs.new_meta_model is not None:
        new_rows.append(inputs.new_meta_model)
    values: list[ScoreValue] = similarity_scores(inputs) if 0 in missing else []
    scorer = DailyScorer(inputs, cache, round_.id)
    for day in range(1, known + 1):
        if day in recorded:
            if day not in missing:
                continue
            targets = stored_targets(session, storage, round_, day)
        else:
            targets = source.targets(round_, day)
            new_rows.append(store_targets(clock, storage, round_, day, targets))
            target_days += 1
        values += scorer.scores(day, targets)
    wanted = {(sub.submission_id, day) for day, subs in missing.items() for sub in subs}
    added = [v for v in values if (v.submission.submission_id, v.day) in wanted]
    update = ScoringUpdate(
        round_.number,
        sorted(d for d in missing if d > 0),
        len(wanted),
        rows=len(added),
        target_days=target_days,
        known=known,
    )
    scores = _score_insert(session.get_bind().dialect, _score_rows(round_, clock.now(), added))
    return ScoringPass(round_.id, new_rows, scores, update)


def write_scores(session: Session, passes: Sequence[ScoringPass]) -> None:
    """Add the rows of computed passes (`compute_round`): one insert for all their scores."""
    session.add_all([row for scoring in passes for row in scoring.rows])
    session.flush()
    inserts = [scoring.scores for scoring in passes if scoring.scores.params]
    if inserts:  # one executemany: K × metrics rows per day
        statement = inserts[0].statement
        assert all(each.statement == statement for each in inserts), "one table, one dialect"
        params = [row for each in inserts for row in each.params]
        session.connection().exec_driver_sql(statement, params)
    crash_point("scoring:before-commit")


@dataclass(frozen=True)
class ScoreInsert:
    """Score rows as one driver-level executemany: its statement and each row's parameters."""

    statement: str
    params: list[Any]


def _score_insert(dialect: Dialect, rows: list[dict[str, object]]) -> ScoreInsert:
    """The insert of score rows for `dialect`, each value passed through its column's bind
    processor here (once per object: the rows share their round, models, submissions and
    time) and each row given a new time-ordered id (SQLAlchemy's per-row handling of
    parameters costs more than the insert itself)."""
    columns = list(SCORES.columns)
    compiled = insert(SCORES).compile(dialect=dialect, column_keys=[c.key for c in columns])
    processors = [c.type.dialect_impl(dialect).bind_processor(dialect) for c in columns]
    names = [c.key for c in columns]
    carried = [name for name in names if name != "id"]
    take, at = itemgetter(*carried), names.index("id")
    values: list[list[object]] = []
    for row, id_ in zip(rows, time_ordered_ids(len(rows)), strict=True):  # as RoundScore's
        if len(row) != len(carried):
            raise ValueError(f"a score row has the columns {sorted(row)}")
        value = list(take(row))
        value.insert(at, id_)
        values.append(value)
    for position, process in enumerate(processors):  # one column at a time, over every row
        if process is None:
            continue
        if names[position] == "id":
            for value in values:
                value[position] = process(value[position])
        else:  # a value processed once per object (kept, so that its identity holds)
            done: dict[int, tuple[object, object]] = {}
            for value in values:
                given = value[position]
                found = done.get(id(given))
                if found is None:
                    found = done[id(given)] = (given, process(given))
                value[position] = found[1]
    if compiled.positional:
        order = [names.index(name) for name in compiled.positiontup or ()]
        params: list[Any] = [tuple(value[k] for k in order) for value in values]
    else:
        binds = [compiled.bind_names[compiled.binds[name]] for name in names]
        params = [dict(zip(binds, value, strict=True)) for value in values]
    return ScoreInsert(compiled.string, params)


def _missing_scores(
    session: Session, round_: Round, submissions: list[ScoredSubmission], known: int
) -> dict[int, list[ScoredSubmission]]:
    """Per day 0…`known`, the scored submissions without a stored score that day.

    The common answer, "nothing", comes from one count per day; the stored pairs are read
    only for the days that lack some (a round keeps about K × 21 of them)."""
    counts = {
        day: count
        for day, count in session.execute(
            select(RoundScore.day, func.count(func.distinct(RoundScore.submission_id)))
            .where(RoundScore.round_id == round_.id)
            .group_by(RoundScore.day)
        )
    }
    incomplete = [day for day in range(known + 1) if counts.get(day, 0) < len(submissions)]
    if not incomplete:
        return {}
    stored = {
        (submission_id, day)
        for submission_id, day in session.execute(
            select(RoundScore.submission_id, RoundScore.day).where(
                RoundScore.round_id == round_.id, RoundScore.day.in_(incomplete)
            )
        )
    }
    missing = {
        day: [sub for sub in submissions if (sub.submission_id, day) not in stored]
        for day in incomplete
    }
    return {day: subs for day, subs in missing.items() if subs}


def _score_rows(
    round_: Round, now: datetime, values: Iterable[ScoreValue]
) -> list[dict[str, object]]:
    return [
        {
            "round_id": round_.id,
            "model_id": value.submission.model_id,
            "submission_id": value.submission.submission_id,
            "metric": value.metric,
            "day": value.day,
            "value": value.value,
            "late": value.submission.late,
            "scoring_version": SCORING_VERSION,
            "computed_at": now,
        }
        for value in values
    ]


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
    file. Each scoring pass is replayed as it ran: its rows share the pass's time, and its
    batch held every submission scored by then (a late one joins the passes after it
    arrived), in the same order, since a batch's floating-point sums depend on its shape.
    An empty list means the round reproduces exactly.
    """
    rows = round_scores(session, round_)
    stored = {(row.model_id, row.metric, row.day): row.value for row in rows}
    first_scored: dict[uuid.UUID, datetime] = {}
    for row in rows:
        earlier = first_scored.get(row.submission_id)
        first_scored[row.submission_id] = (
            row.computed_at if earlier is None else min(earlier, row.computed_at)
        )
    inputs = round_inputs(session, clock, storage, round_, from_files=True)
    replayed: dict[tuple[uuid.UUID, str, int], float | None] = {}
    for moment in sorted({row.computed_at for row in rows}):
        members = [
            k
            for k, sub in enumerate(inputs.submissions)
            if sub.submission_id in first_scored and first_scored[sub.submission_id] <= moment
        ]
        batch = _batch(inputs, members)
        days = sorted({row.day for row in rows if row.computed_at == moment})
        values = similarity_scores(batch) if 0 in days else []
        scorer = DailyScorer(batch)
        for day in (day for day in days if day > 0):
            values += scorer.scores(day, stored_targets(session, storage, round_, day))
        kept = {
            (row.submission_id, row.metric, row.day) for row in rows if row.computed_at == moment
        }
        replayed |= {
            (v.submission.model_id, v.metric, v.day): v.value
            for v in values
            if (v.submission.submission_id, v.metric, v.day) in kept
        }
    return [
        Difference(model, metric, day, stored.get(key), replayed.get(key))
        for key in sorted(stored.keys() | replayed.keys(), key=str)
        for (model, metric, day) in [key]
        if stored.get(key) != replayed.get(key)
    ]


def _batch(inputs: RoundInputs, members: list[int]) -> RoundInputs:
    """`inputs` with only the submissions at `members` (their order kept)."""
    return replace(
        inputs,
        submissions=[inputs.submissions[k] for k in members],
        predictions=inputs.predictions[:, members],
    )
