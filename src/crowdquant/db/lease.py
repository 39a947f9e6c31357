"""A named lease in the database: at most one process holds it at a time.

A process takes the lease when it is free or expired, and renews it while it holds it;
both are one compare-and-set UPDATE on the lease's row (inserted free beforehand if
missing), so of several processes trying at once exactly one wins, on SQLite (one writer
at a time) and on PostgreSQL (the row lock, the condition checked again after waiting).
A holder that stops renewing (it died, or stalled) loses the lease when it expires, and
the next taker gets it; a clean shutdown releases it at once, and a holder on the same
machine whose process has ended (killed, say, and restarted) is taken over at once.

Lease time is wall time (`wall_time`), not the tournament's clock, which the demo
accelerates: it measures whether a process is alive. Processes on several machines need
their clocks in sync (NTP) to well within the lease's time to live.

Work done under a lease is fenced (`Lease.fenced`): every transaction of a session made
by the fenced factory first renews the lease in that same transaction, and fails with
`LeaseLost` if another process holds it. The renewal holds the lease's row (PostgreSQL)
or the database's write lock (SQLite) until the transaction ends, so no other process can
take the lease while a step runs, and a holder that stalled past its lease has its next
step refused rather than running beside the new holder's. (One that stalls inside a step
keeps those locks: nobody takes over until it wakes or its connection is dropped.)
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Connection, event, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import Lease as LeaseRow
from crowdquant.db.session import take_write_lock, transaction

logger = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
LOCK_WAIT = "2s"
"""How long a PostgreSQL taker waits for the row while the holder's step runs."""


class LeaseLost(RuntimeError):  # noqa: N818  (what happened, as the scheduler says it)
    """Another process holds the lease: the work it guards must not go on here."""


def wall_time() -> datetime:
    """The machine's time, UTC: lease time, whatever clock the tournament runs on."""
    return datetime.now(UTC)


def process_holder() -> str:
    """A name for this process that no other process (here or on another machine) shares:
    ``host:pid:random``."""
    return f"{_host()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def dead_here(holder: str) -> bool:
    """Whether `holder` names a process of this machine that has ended (a zombie included)."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != _host() or not pid_text.isdigit() or int(pid_text) == os.getpid():
        return False
    try:
        state = Path(f"/proc/{pid_text}/stat").read_text().rpartition(")")[2].split()[0]
    except FileNotFoundError:
        return True
    except OSError:  # no /proc here: ask the system
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return state in ("Z", "X")


def _host() -> str:
    return socket.gethostname()[:80]


@dataclass
class Lease:
    """The lease `name` as `holder` takes it, for `ttl` from each renewal."""

    sessions: sessionmaker[Session]
    name: str
    ttl: timedelta
    holder: str = field(default_factory=process_holder)
    now: Callable[[], datetime] = wall_time
    _held: bool = field(default=False, init=False, repr=False)

    @property
    def renew_every(self) -> float:
        """Seconds between renewals while held: a third of the time to live."""
        return self.ttl.total_seconds() / 3

    def acquire(self) -> bool:
        """Take the lease if it is free or expired, or renew it if this holder has it; True
        if held now. A database that is busy or unreachable answers False (not held)."""
        try:
            with transaction(self.sessions) as session:
                take_write_lock(session)
                connection = session.connection()
                if connection.dialect.name == "postgresql":
                    connection.exec_driver_sql(f"SET LOCAL lock_timeout = '{LOCK_WAIT}'")
                _insert_free(connection, self.name)
                now = self.now()
                free = LeaseRow.holder.is_(None) | (LeaseRow.expires_at <= now)
                current = connection.scalar(
                    select(LeaseRow.holder).where(LeaseRow.name == self.name)
                )
                if current is not None and dead_here(current):
                    free = free | (LeaseRow.holder == current)  # its process is gone
                taken = connection.execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name, (LeaseRow.holder == self.holder) | free)
                    .values(holder=self.holder, expires_at=now + self.ttl)
                )
                held = taken.rowcount == 1
        except DBAPIError as exc:
            logger.warning("could not take the %s lease: %s", self.name, exc.orig)
            held = False
        if held != self._held:
            logger.info("%s the %s lease (%s)", "took" if held else "lost", self.name, self.holder)
            self._held = held
        return held

    def release(self) -> None:
        """Give the lease up now if this holder has it (a clean shutdown)."""
        try:
            with transaction(self.sessions) as session:
                take_write_lock(session)
                session.connection().execute(
                    update(LeaseRow)
                    .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
                    .values(holder=None, expires_at=self.now())
                )
            self._held = False
        except DBAPIError as exc:
            logger.warning("could not release the %s lease: %s", self.name, exc.orig)

    def fence(self, connection: Connection) -> None:
        """Renew the lease in `connection`'s transaction; `LeaseLost` if another holds it."""
        renewed = connection.execute(
            update(LeaseRow)
            .where(LeaseRow.name == self.name, LeaseRow.holder == self.holder)
            .values(expires_at=self.now() + self.ttl)
        )
        if renewed.rowcount != 1:
            raise LeaseLost(f"this process no longer holds the {self.name} lease")

    def fenced(self, sessions: sessionmaker[Session]) -> sessionmaker[Session]:
        """A factory like `sessions` whose every transaction begins with `fence`."""
        fenced: sessionmaker[Session] = sessionmaker(class_=sessions.class_, **sessions.kw)

        def begin(_session: Session, _transaction: Any, connection: Connection) -> None:
            self.fence(connection)

        event.listen(fenced, "after_begin", begin)
        return fenced


def holder_of(
    sessions: sessionmaker[Session], name: str, now: datetime | None = None
) -> str | None:
    """Who holds the lease `name` at `now` (by default the wall time); None if nobody."""
    now = wall_time() if now is None else now
    with transaction(sessions) as session:
        row = session.scalars(select(LeaseRow).where(LeaseRow.name == name)).one_or_none()
    if row is None or row.holder is None or row.expires_at <= now:
        return None
    return row.holder


def take_row_lease(
    session: Session,
    table: type[Any],
    row_id: uuid.UUID,
    expires: datetime | None,
    *conditions: ColumnElement[bool],
    **values: Any,
) -> bool:
    """Lease one row of a work queue (a `table` with ``id`` and ``lease_expires_at``) by a
    compare-and-set: the row is updated with `values` only if its lease still ends at
    `expires` (as read when it was chosen) and `conditions` hold; whether it was. Of several
    workers taking the same row at once, exactly one wins."""
    held = (
        table.lease_expires_at.is_(None) if expires is None else table.lease_expires_at == expires
    )
    taken = session.execute(
        update(table).where(table.id == row_id, held, *conditions).values(**values)
    )
    return bool(taken.rowcount == 1)  # type: ignore[attr-defined]


def _insert_free(connection: Connection, name: str) -> None:
    """The lease's row, free, unless it exists."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    connection.execute(
        dialect.insert(LeaseRow)
        .values(name=name, holder=None, expires_at=EPOCH)
        .on_conflict_do_nothing(index_elements=["name"])
    )
