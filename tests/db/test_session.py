"""Engines, URLs and transaction scopes."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import DatasetFile
from crowdquant.db.session import (
    make_engine,
    normalise_url,
    session_factory,
    transaction,
    write_transaction,
)

T0 = datetime(2026, 1, 3, 13, 0, tzinfo=UTC)


def _dataset_file(filename: str) -> DatasetFile:
    return DatasetFile(
        version="v1",
        filename=filename,
        size=1,
        sha256="0" * 64,
        storage_key=f"datasets/v1/{filename}",
        published_at=T0,
    )


def _filenames(sessions: sessionmaker[Session]) -> set[str]:
    with sessions() as session:
        return set(session.scalars(select(DatasetFile.filename)))


@pytest.mark.parametrize(
    ("given", "driver"),
    [
        ("postgresql://u@h/db", "postgresql+psycopg"),
        ("postgres://u@h/db", "postgresql+psycopg"),
        ("postgresql+psycopg://u@h/db", "postgresql+psycopg"),
        ("sqlite:///x.db", "sqlite"),
    ],
)
def test_urls_pick_the_installed_drivers(given: str, driver: str) -> None:
    assert normalise_url(given).drivername == driver


def test_sqlite_enforces_foreign_keys_and_uses_wal(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a.db'}")
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    engine.dispose()

    migrating = make_engine(f"sqlite:///{tmp_path / 'a.db'}", foreign_keys=False)
    with migrating.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 0
    migrating.dispose()


def test_sqlite_in_memory() -> None:
    engine = make_engine("sqlite://")
    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar() == 1
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    engine.dispose()


def test_transaction_commits_or_rolls_back(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.add(_dataset_file("kept.parquet"))

    with pytest.raises(RuntimeError), transaction(sessions) as session:
        session.add(_dataset_file("lost.parquet"))
        session.flush()
        raise RuntimeError("the use case failed")

    assert _filenames(sessions) == {"kept.parquet"}


def test_savepoints_roll_back_inside_a_transaction(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        session.add(_dataset_file("outer.parquet"))
        nested = session.begin_nested()
        session.add(_dataset_file("inner.parquet"))
        session.flush()
        nested.rollback()

    assert _filenames(sessions) == {"outer.parquet"}


def _write_now(engine: Engine) -> None:
    """Insert a row from another connection, without waiting for a lock held elsewhere."""
    with engine.begin() as connection:
        connection.exec_driver_sql("PRAGMA busy_timeout = 0")
        connection.exec_driver_sql("INSERT INTO t VALUES (2)")


def test_a_write_transaction_holds_sqlites_write_lock_from_its_start(tmp_path: Path) -> None:
    """On SQLite a transaction that reads, then writes, fails if another connection wrote
    in between (its snapshot is stale, whatever the busy timeout); a write transaction
    holds the write lock from its start, so the other connection waits its turn instead."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    engine, other = make_engine(url), make_engine(url)
    sessions = session_factory(engine)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    try:
        stale = pytest.raises(OperationalError, match="database is locked")
        with stale, transaction(sessions) as session:
            session.execute(text("SELECT count(*) FROM t"))
            _write_now(other)  # gets in between: this snapshot is now stale
            session.execute(text("INSERT INTO t VALUES (1)"))
        with write_transaction(sessions) as session:
            session.execute(text("SELECT count(*) FROM t"))
            with pytest.raises(OperationalError, match="database is locked"):
                _write_now(other)  # must wait: this transaction holds the lock
            session.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT x FROM t ORDER BY x").scalars().all()
        assert rows == [1, 2]  # the first's write lost, the second's kept
    finally:
        engine.dispose()
        other.dispose()
