"""One bootstrap for the server and the CLI: from settings to what every service works with.

`bootstrap` creates the home directory, migrates the database to head, and opens the
engine, the session factory, the storage and the ledger the settings choose; with
`genesis`, it records the ledger's genesis (the fixed supply, once); with
`validation_pool`, it starts the worker processes that validate uploads (the server's
`ValidationPool`; the CLI validates in its own process).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db import migrate
from crowdquant.db.session import make_engine, session_factory
from crowdquant.ledger import Ledger, ledger_from_settings
from crowdquant.ledger.sql import serialised
from crowdquant.settings import Settings
from crowdquant.storage import FileStorage, storage_from_settings
from crowdquant.tournament.validator import IN_PROCESS, ValidationPool, Validator


class MigrationError(RuntimeError):
    """The database could not be migrated to head."""


@dataclass(frozen=True)
class Infrastructure:
    """Settings, the clock, the migrated database, storage and the ledger."""

    settings: Settings
    clock: Clock
    engine: Engine
    sessions: sessionmaker[Session]
    storage: FileStorage
    ledger: Ledger
    validator: Validator = IN_PROCESS
    """Where uploads are validated: a `ValidationPool` for the server."""

    def close(self) -> None:
        self.validator.close()
        self.engine.dispose()


def printable_url(url: str) -> str:
    """A database URL with its password hidden."""
    return make_url(url).render_as_string(hide_password=True)


def bootstrap(
    settings: Settings, clock: Clock, *, genesis: bool = False, validation_pool: bool = False
) -> Infrastructure:
    """The infrastructure `settings` choose, on the database migrated to head; `close` it."""
    settings.home.mkdir(parents=True, exist_ok=True)
    try:
        migrate.upgrade(settings.database)
    except Exception as exc:
        raise MigrationError(f"cannot migrate {printable_url(settings.database)}: {exc}") from exc
    pool = settings.database_pool_size
    engine = make_engine(settings.database, pool_size=pool, max_overflow=pool)
    sessions = session_factory(engine)
    ledger = ledger_from_settings(settings, clock)
    if genesis:
        try:
            serialised(sessions, ledger.genesis)  # the books start with the fixed supply, once
        except BaseException:
            engine.dispose()
            raise
    return Infrastructure(
        settings=settings,
        clock=clock,
        engine=engine,
        sessions=sessions,
        storage=storage_from_settings(settings),
        ledger=ledger,
        validator=ValidationPool.from_settings(settings) if validation_pool else IN_PROCESS,
    )
