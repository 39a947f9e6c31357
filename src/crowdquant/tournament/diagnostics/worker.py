"""Step 3, in the background: claim a pending request, score it, record the outcome; and the
thread that does so until told to stop."""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.models import Diagnostics, DiagnosticsStatus
from crowdquant.db.session import transaction
from crowdquant.scoring.validation import SubmissionError
from crowdquant.storage import FileStorage, NotFound
from crowdquant.tournament.diagnostics.validation import ValidationLoader, score_diagnostics
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.validator import IN_PROCESS, Validator

INTERNAL_ERROR: Final = "internal error"
STALE_ERROR: Final = "internal error: the diagnostics job stopped before finishing"

logger = logging.getLogger(__name__)


# --- step 3: the worker's side -----------------------------------------------------------------


def claim_next_diagnostics(session: Session, clock: Clock) -> Diagnostics | None:
    """Mark the oldest pending diagnostics `running`, in the caller's transaction.

    One compare-and-set statement (``UPDATE ... WHERE id = <oldest pending> AND status =
    'pending'``), the transaction's first write: of two workers racing for a row, one gets
    it and the other gets None (and may try again). Returns the claimed row.
    """
    oldest = (
        select(Diagnostics.id)
        .where(Diagnostics.status == DiagnosticsStatus.PENDING)
        .order_by(Diagnostics.created_at, Diagnostics.id)
        .limit(1)
        .scalar_subquery()
    )
    claimed = session.scalar(
        update(Diagnostics)
        .where(Diagnostics.id == oldest, Diagnostics.status == DiagnosticsStatus.PENDING)
        .values(status=DiagnosticsStatus.RUNNING, started_at=clock.now())
        .returning(Diagnostics.id)
        .execution_options(synchronize_session=False)
    )
    if claimed is None:
        return None
    return session.get(Diagnostics, claimed, populate_existing=True)


def diagnostics_waiting(session: Session) -> bool:
    """Whether any diagnostics is pending or running (what a worker's poll looks at)."""
    waiting = (DiagnosticsStatus.PENDING, DiagnosticsStatus.RUNNING)
    found = session.scalar(select(Diagnostics.id).where(Diagnostics.status.in_(waiting)).limit(1))
    return found is not None


def fail_stale_diagnostics(session: Session, clock: Clock, older_than: timedelta) -> int:
    """Fail every diagnostics `running` since before `older_than` ago (its worker died);
    returns how many. A slow job that finishes later finds its row failed and keeps it so."""
    now = clock.now()
    result = session.execute(
        update(Diagnostics)
        .where(
            Diagnostics.status == DiagnosticsStatus.RUNNING,
            Diagnostics.started_at < now - older_than,
        )
        .values(status=DiagnosticsStatus.FAILED, error=STALE_ERROR, finished_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def run_next_diagnostics(
    sessions: sessionmaker[Session],
    storage: FileStorage,
    clock: Clock,
    validation_loader: ValidationLoader,
    validator: Validator = IN_PROCESS,
) -> Diagnostics | None:
    """Claim and run the oldest pending diagnostics; None when there is none.

    The claim and the outcome are committed in two short transactions; reading the file and
    scoring run between them, outside any. The file is decoded and validated by `validator`
    (the server's validation pool). A file that fails validation or breaks the pool's limits,
    a version without usable validation data or a vanished file fail the row with a
    readable `error`; any other
    exception fails it with ``internal error`` (logged) and is not raised. Returns the row as
    stored at the end (`done` or `failed`).
    """
    with transaction(sessions) as session:
        row = claim_next_diagnostics(session, clock)
    if row is None:
        return None
    result: dict[str, Any] | None = None
    error: str | None = None
    try:
        with storage.read(row.file_key) as chunks:
            data = b"".join(chunks)
        report = score_diagnostics(
            validation_loader(row.dataset_version),
            data,
            row.filename,
            row.request_number,
            validator,
        )
        result = report.model_dump(mode="json")
    except (SubmissionError, ServiceError) as refusal:
        error = str(refusal)
    except NotFound:
        error = "the uploaded file is gone: upload it again"
    except Exception:
        logger.exception("diagnostics %s failed", row.id)
        error = INTERNAL_ERROR
    return _finish(sessions, clock, row.id, result, error)


def _finish(
    sessions: sessionmaker[Session],
    clock: Clock,
    diagnostics_id: uuid.UUID,
    result: dict[str, Any] | None,
    error: str | None,
) -> Diagnostics | None:
    values: dict[str, Any] = {"finished_at": clock.now()}
    if error is None:
        values.update(status=DiagnosticsStatus.DONE, result=result, error=None)
    else:
        values.update(status=DiagnosticsStatus.FAILED, result=None, error=error)
    with transaction(sessions) as session:
        changed = session.execute(
            update(Diagnostics)
            .where(
                Diagnostics.id == diagnostics_id,
                Diagnostics.status == DiagnosticsStatus.RUNNING,
            )
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not getattr(changed, "rowcount", 0):
            logger.warning(
                "diagnostics %s was no longer running; its outcome is dropped", diagnostics_id
            )
        return session.get(Diagnostics, diagnostics_id, populate_existing=True)


# --- the worker --------------------------------------------------------------------------------


class DiagnosticsWorker(threading.Thread):
    """A daemon thread running pending diagnostics until `stop` is set.

    Each poll fails jobs left `running` for longer than `stale_after` (a worker that died),
    then runs pending diagnostics one after another until none is left, then waits
    `interval` seconds (or until `stop` is set). Nothing escapes the loop: a failing poll is
    logged and retried at the next one. Start it with `start()`; `stop()` sets the event and
    waits for the current job to finish.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        storage: FileStorage,
        clock: Clock,
        validation_loader: ValidationLoader,
        *,
        interval: float = 5.0,
        stale_after: timedelta = timedelta(hours=2),
        stop: threading.Event | None = None,
        on_done: Callable[[Diagnostics], object] | None = None,
        validator: Validator = IN_PROCESS,
    ) -> None:
        super().__init__(name="diagnostics-worker", daemon=True)
        self.sessions, self.storage, self.clock = sessions, storage, clock
        self.validation_loader = validation_loader
        self.interval, self.stale_after = interval, stale_after
        self.stop_event = stop if stop is not None else threading.Event()
        self.on_done = on_done
        self.validator = validator

    def poll(self) -> int:
        """One poll: fail stale jobs, then run pending ones until none is left (or `stop`);
        returns how many ran. Raises what the database raises. With no job pending or
        running it only reads: on SQLite an idle poll that wrote would hold the write lock
        for a moment, and a transaction of the app or the scheduler that read before
        writing would fail then, at once ("database is locked"), whatever the busy timeout."""
        with transaction(self.sessions) as session:
            if not diagnostics_waiting(session):
                return 0
        with transaction(self.sessions) as session:
            stale = fail_stale_diagnostics(session, self.clock, self.stale_after)
        if stale:
            logger.warning("failed %d diagnostics left running by a stopped worker", stale)
        ran = 0
        while not self.stop_event.is_set():
            row = run_next_diagnostics(
                self.sessions, self.storage, self.clock, self.validation_loader, self.validator
            )
            if row is None:
                break
            ran += 1
            if self.on_done is not None:
                self.on_done(row)
        return ran

    def run(self) -> None:
        while not self.stop_event.is_set():
            try:
                self.poll()
            except Exception:
                logger.exception("a diagnostics poll failed; trying again in %s s", self.interval)
            self.stop_event.wait(self.interval)

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to end and wait (up to `timeout` seconds) for it."""
        self.stop_event.set()
        if self.is_alive():
            self.join(timeout)
