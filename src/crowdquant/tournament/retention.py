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

Both work in bounded steps (`per_tick` files at most) so a backlog never stalls a caller;
both are idempotent. A file is deleted before its row is marked: a crash in between leaves
a row the next sweep marks again (deleting a missing file is no error).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
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
    orphan_grace: timedelta = timedelta(days=1)
    """How old a file no row names must be before it is deleted."""
    sweep_every: timedelta = timedelta(hours=1)
    """How often the scheduler sweeps, by its clock."""


@dataclass(frozen=True)
class Swept:
    purged: int
    orphans: int


def needed_submissions(session: Session, keep_newest: int) -> set[uuid.UUID]:
    """The ids of every upload whose file must stay (see the module's rule)."""
    rows = session.execute(
        select(
            Submission.id,
            Submission.round_id,
            Submission.model_id,
            Submission.status,
            Submission.late,
        ).order_by(Submission.created_at, Submission.id)
    ).all()
    scored: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID] = {}
    by_model: dict[uuid.UUID, list[uuid.UUID]] = defaultdict(list)
    for sub_id, round_id, model_id, status, late in rows:  # oldest first
        by_model[model_id].append(sub_id)
        if status is SubmissionStatus.VALID and ((round_id, model_id) not in scored or not late):
            scored[round_id, model_id] = sub_id
    needed = set(scored.values())
    if keep_newest:
        needed |= {sub_id for ids in by_model.values() for sub_id in ids[-keep_newest:]}
    others = [(sub_id, round_id) for sub_id, round_id, *_ in rows if sub_id not in needed]
    return needed | _named_by_scores(session, others)


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
    sessions: sessionmaker[Session], storage: FileStorage, now: datetime, retention: Retention
) -> int:
    """Delete the files of at most `retention.per_tick` uploads no longer needed, oldest
    first, and mark their rows; how many were purged."""
    with transaction(sessions) as session:
        needed = needed_submissions(session, retention.keep_newest)
        candidates = session.execute(
            select(Submission.id, Submission.file_key)
            .where(Submission.purged_at.is_(None))
            .order_by(Submission.created_at, Submission.id)
        ).all()
    doomed = [(sub_id, key) for sub_id, key in candidates if sub_id not in needed]
    doomed = doomed[: retention.per_tick]
    for _, key in doomed:
        storage.delete(key)
    if doomed:
        with transaction(sessions) as session:
            take_write_lock(session)
            session.execute(
                update(Submission)
                .where(Submission.id.in_([sub_id for sub_id, _ in doomed]))
                .values(purged_at=now)
            )
    return len(doomed)


def sweep_orphan_files(
    sessions: sessionmaker[Session], storage: FileStorage, now: datetime, retention: Retention
) -> int:
    """Delete at most `retention.per_tick` files under the submissions folder that no row
    names and that are older than `retention.orphan_grace`; how many were deleted."""
    cutoff = now - retention.orphan_grace
    old = [found.key for found in storage.list(SUBMISSIONS_PREFIX) if found.modified < cutoff]
    if not old:
        return 0
    with transaction(sessions) as session:  # after listing: a row committed since is seen
        named = set(session.scalars(select(Submission.file_key)))
    orphans = [key for key in old if key not in named][: retention.per_tick]
    for key in orphans:
        storage.delete(key)
    return len(orphans)


def sweep_submission_files(
    sessions: sessionmaker[Session], storage: FileStorage, now: datetime, retention: Retention
) -> Swept:
    """One bounded step of both: purge unneeded uploads, then delete orphans."""
    return Swept(
        purged=purge_uploads(sessions, storage, now, retention),
        orphans=sweep_orphan_files(sessions, storage, now, retention),
    )
