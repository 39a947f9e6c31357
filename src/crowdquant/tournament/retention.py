"""How long uploaded submission files are kept, and the sweep of files no row names.

A model's upload files stay while a round needs them and for its newest `keep_newest`
uploads; every other file is deleted from storage and its `Submission` row marked
`purged_at` (the row stays listed; its download is refused with `SubmissionPurged`).
A round needs, per model, the upload it is scored by (`scoring.inputs.scored_submissions`:
the newest valid on-time one, else the first valid late one), whatever the round's status:
a resolved round's replay reads exactly those files again. Any upload a stored score names
stays too.

Storage objects under the submissions folder that no row names (a crash between the file
write and the row's commit leaves one) are deleted once older than a grace period.

Both work in bounded steps so that neither a backlog nor a long history stalls a caller:
each sweep looks at one page of files and one page of uploads (`scan_per_tick` each) and
deletes `per_tick` files at most; a `SweepCursor` carries on from where the last sweep
stopped and starts over past the end. Both are idempotent. A file is deleted before its
row is marked: a crash in between leaves a row the next sweep marks again (deleting a
missing file is no error).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import RoundScore, Submission, SubmissionStatus
from crowdquant.db.session import take_write_lock, transaction
from crowdquant.storage import FileStorage
from crowdquant.tournament.submissions import SUBMISSIONS_PREFIX


@dataclass(frozen=True)
class Retention:
    """What a sweep keeps and how much it does at once."""

    keep_newest: int = 5
    """Each model's newest uploads kept beside those a round needs."""
    per_tick: int = 500
    """The most files one sweep deletes (purged uploads and orphans each)."""
    scan_per_tick: int = 1_000
    """The most stored files, and the most uploads, one sweep looks at (each)."""
    orphan_grace: timedelta = timedelta(days=1)
    """How old a file no row names must be before it is deleted."""
    sweep_every: timedelta = timedelta(hours=1)
    """How often the scheduler sweeps, by its clock."""


@dataclass(frozen=True)
class Swept:
    purged: int
    orphans: int


@dataclass
class SweepCursor:
    """Where the next sweep carries on from: after the last stored file and the last upload
    (`created_at`, `id`) it looked at; None: from the start."""

    file_key: str | None = None
    upload: tuple[datetime, uuid.UUID] | None = None


def needed_among(
    session: Session, uploads: list[tuple[uuid.UUID, uuid.UUID, uuid.UUID]], keep_newest: int
) -> set[uuid.UUID]:
    """Which of `uploads` (id, round, model) must keep their files (see the module's rule),
    reading only their rounds' and models' rows."""
    if not uploads:
        return set()
    pairs = {(round_id, model_id) for _, round_id, model_id in uploads}
    rounds = sorted({round_id for round_id, _ in pairs})
    models = sorted({model_id for _, model_id in pairs})
    scored: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
    for start in range(0, len(rounds), 500):
        rows = session.execute(
            select(Submission.id, Submission.round_id, Submission.model_id, Submission.late)
            .where(
                Submission.round_id.in_(rounds[start : start + 500]),
                Submission.model_id.in_(models),
                Submission.status == SubmissionStatus.VALID,
            )
            .order_by(Submission.created_at, Submission.id)
        ).all()
        for sub_id, round_id, model_id, late in rows:  # oldest first
            pair = (round_id, model_id)
            if pair in pairs and (pair not in scored or not late):
                scored[pair] = sub_id
    needed = set(scored.values())
    others = [upload for upload in uploads if upload[0] not in needed]
    for model_id in sorted({model_id for _, _, model_id in others}) if keep_newest else ():
        needed.update(
            session.scalars(
                select(Submission.id)
                .where(Submission.model_id == model_id)
                .order_by(Submission.created_at.desc(), Submission.id.desc())
                .limit(keep_newest)
            )
        )
    ids = {sub_id for sub_id, _, _ in uploads}
    rest = [(sub_id, round_id) for sub_id, round_id, _ in others if sub_id not in needed]
    return (needed & ids) | _named_by_scores(session, rest)


def _named_by_scores(
    session: Session, submissions: list[tuple[uuid.UUID, uuid.UUID]]
) -> set[uuid.UUID]:
    """Which of `submissions` (id, round) a stored score names, read round by round (the
    scores' index leads with the round): only the rounds of these submissions are read."""
    wanted = {sub_id for sub_id, _ in submissions}
    rounds = sorted({round_id for _, round_id in submissions})
    named: set[uuid.UUID] = set()
    for start in range(0, len(rounds), 500):
        named.update(
            session.scalars(
                select(RoundScore.submission_id)
                .where(RoundScore.round_id.in_(rounds[start : start + 500]))
                .distinct()
            )
        )
    return named & wanted


def purge_uploads(
    sessions: sessionmaker[Session],
    storage: FileStorage,
    now: datetime,
    retention: Retention,
    cursor: SweepCursor | None = None,
) -> int:
    """Look at the next `retention.scan_per_tick` unpurged uploads after `cursor`'s, oldest
    first; delete the files of at most `retention.per_tick` of them no longer needed and mark
    their rows; how many were purged. `cursor` moves on past what was looked at."""
    cursor = cursor or SweepCursor()
    query = select(
        Submission.id,
        Submission.round_id,
        Submission.model_id,
        Submission.file_key,
        Submission.created_at,
    ).where(Submission.purged_at.is_(None))
    if cursor.upload is not None:
        made, last = cursor.upload
        query = query.where(
            or_(
                Submission.created_at > made,
                and_(Submission.created_at == made, Submission.id > last),
            )
        )
    with transaction(sessions) as session:
        page = session.execute(
            query.order_by(Submission.created_at, Submission.id).limit(retention.scan_per_tick)
        ).all()
        needed = needed_among(
            session, [(row.id, row.round_id, row.model_id) for row in page], retention.keep_newest
        )
    doomed = [row for row in page if row.id not in needed]
    seen = page if len(page) == retention.scan_per_tick else []  # short: start over next
    if len(doomed) > retention.per_tick:
        doomed = doomed[: retention.per_tick]
        seen = doomed  # the rest of the page next time
    cursor.upload = (seen[-1].created_at, seen[-1].id) if seen else None
    for row in doomed:
        storage.delete(row.file_key)
    if doomed:
        with transaction(sessions) as session:
            take_write_lock(session)
            session.execute(
                update(Submission)
                .where(Submission.id.in_([row.id for row in doomed]))
                .values(purged_at=now)
            )
    return len(doomed)


def sweep_orphan_files(
    sessions: sessionmaker[Session],
    storage: FileStorage,
    now: datetime,
    retention: Retention,
    cursor: SweepCursor | None = None,
) -> int:
    """Look at the next `retention.scan_per_tick` files under the submissions folder after
    `cursor`'s; delete at most `retention.per_tick` of them that no row names and that are
    older than `retention.orphan_grace`; how many were deleted. `cursor` moves on past what
    was looked at."""
    cursor = cursor or SweepCursor()
    page = storage.list(SUBMISSIONS_PREFIX, after=cursor.file_key, limit=retention.scan_per_tick)
    seen = page[-1].key if len(page) == retention.scan_per_tick else None  # short: start over
    cutoff = now - retention.orphan_grace
    old = [found.key for found in page if found.modified < cutoff]
    named: set[str] = set()
    with transaction(sessions) as session:  # after listing: a row committed since is seen
        for start in range(0, len(old), 500):
            named.update(
                session.scalars(
                    select(Submission.file_key).where(
                        Submission.file_key.in_(old[start : start + 500])
                    )
                )
            )
    orphans = [key for key in old if key not in named]
    if len(orphans) > retention.per_tick:
        orphans = orphans[: retention.per_tick]
        seen = orphans[-1]  # the rest of the page next time
    cursor.file_key = seen
    for key in orphans:
        storage.delete(key)
    return len(orphans)


def sweep_submission_files(
    sessions: sessionmaker[Session],
    storage: FileStorage,
    now: datetime,
    retention: Retention,
    cursor: SweepCursor | None = None,
) -> Swept:
    """One bounded step of both: purge unneeded uploads, then delete orphans; `cursor` (a
    fresh one by default: from the start) carries on between steps."""
    cursor = cursor or SweepCursor()
    return Swept(
        purged=purge_uploads(sessions, storage, now, retention, cursor),
        orphans=sweep_orphan_files(sessions, storage, now, retention, cursor),
    )
