"""Engines, sessions and transaction scopes for SQLite (the default) and PostgreSQL.

Nothing here is global: the caller builds one engine from a URL, one session factory from
the engine, and passes the factory to whatever needs a database.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str | URL) -> URL:
    """Pick the installed drivers: `postgresql://` and `postgres://` mean psycopg 3."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, *, foreign_keys: bool = True, **kwargs: Any) -> Engine:
    """An engine for `url`, configured the same way for the application, tests and migrations.

    SQLite: foreign keys enforced (`foreign_keys=False` is for schema migrations only, whose
    table rebuilds must not cascade), write-ahead logging for file databases, a busy timeout
    (`BUSY_TIMEOUT_MS`), and SQLAlchemy in charge of BEGIN so that transactions, savepoints
    and DDL behave as on PostgreSQL; a session marked by `take_write_lock` begins with
    `BEGIN IMMEDIATE`.
    """
    parsed = normalise_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(parsed, **kwargs)

    engine = create_engine(parsed, **kwargs)
    in_memory = parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory"

    @event.listens_for(engine, "connect")
    def _configure_sqlite(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy emit BEGIN (below): pysqlite's legacy mode skips it before DDL,
        # SELECT and SAVEPOINT. PRAGMAs must run outside a transaction, i.e. here.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA foreign_keys = {'ON' if foreign_keys else 'OFF'}")
            cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not in_memory:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        writes = connection.get_execution_options().get(_WRITES, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if writes else "BEGIN")

    return engine


def session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions bound to `engine`; objects stay readable after commit (no reload on access)."""
    return sessionmaker(bind=engine, expire_on_commit=False)


@contextmanager
def transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commits if the block succeeds, rolls back if it raises."""
    with sessions() as session, session.begin():
        yield session


@contextmanager
def write_transaction(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """`transaction` for a unit of work that reads, then writes: on SQLite a writer from its
    start (`take_write_lock`), so that another connection's write committed after its first
    read cannot make its snapshot stale and its first write fail."""
    with transaction(sessions) as session:
        take_write_lock(session)
        yield session


def take_write_lock(session: Session) -> None:
    """Make `session`'s transaction a writer from its start: on SQLite it begins with
    `BEGIN IMMEDIATE`, waiting its turn for the write lock (up to the busy timeout) instead
    of reading a snapshot that a later write may find stale. Call it before the session's
    first statement; PostgreSQL ignores it."""
    session.connection(execution_options={_WRITES: True})


def one_writer_at_a_time(sessions: sessionmaker[Session]) -> bool:
    """Whether `sessions`' database takes one writer at a time (SQLite)."""
    bind = sessions.kw.get("bind")
    return isinstance(bind, Engine) and bind.dialect.name == "sqlite"


BUSY_TIMEOUT_MS = 10_000
"""How long a SQLite connection waits for another's lock before reporting the database busy."""

BUSY_RETRIES = 6
"""How many times a unit of work is tried while the database asks for it to run again."""

_WRITES = "crowdquant_writes"
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})  # serialization failure, deadlock


def is_busy(error: BaseException) -> bool:
    """Whether `error` asks for the whole unit of work to run again, in a new transaction:
    SQLite's "database is locked" (another connection wrote since this transaction's first
    read, or held the lock past the timeout), or PostgreSQL's serialization failure or
    deadlock."""
    if not isinstance(error, DBAPIError):
        return False
    sqlstate = getattr(error.orig, "sqlstate", None)
    if sqlstate in _RETRYABLE_SQLSTATES:
        return True
    return isinstance(error, OperationalError) and "database is locked" in str(error.orig)


def retry_pause(attempt: int, *, base: float = 0.01, ceiling: float = 0.5) -> float:
    """Seconds to wait before running a unit of work again after its `attempt`-th try:
    exponential backoff with full jitter, so that the losers of a race do not meet again."""
    return random.uniform(0, min(ceiling, base * 2**attempt))
