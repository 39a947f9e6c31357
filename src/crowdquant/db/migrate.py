"""Schema migrations, driven from Python (no alembic.ini): upgrade, downgrade, inspect.

The Alembic environment ships inside the package (`crowdquant/db/migrations`), so an
installed wheel can migrate its own database. New revisions: change the models, then
`revision(url, "what changed")` against a database at head, and review the generated file.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection
from sqlalchemy.engine import URL

from crowdquant.db.session import make_engine

MIGRATIONS = Path(__file__).with_name("migrations")


class MigrationError(RuntimeError):
    """A migration left the database inconsistent (it was rolled back)."""


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("file_template", "rev_%%(rev)s_%%(slug)s")
    return config


@contextmanager
def _migrating(url: str | URL) -> Iterator[tuple[Config, Connection]]:
    """One transaction around the whole command; SQLite's foreign keys checked at the end.

    SQLite enforces foreign keys per statement, and batch migrations rebuild tables by
    dropping them, which would cascade; so they are off during the migration and the whole
    database is checked before commit instead.
    """
    engine = make_engine(url, foreign_keys=False)
    try:
        with engine.begin() as connection:
            config = _config()
            config.attributes["connection"] = connection
            yield config, connection
            if connection.dialect.name == "sqlite":
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise MigrationError(f"foreign keys broken by the migration: {broken[:5]}")
    finally:
        engine.dispose()


def upgrade(url: str | URL, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (the newest by default)."""
    with _migrating(url) as (config, _):
        command.upgrade(config, revision)


def downgrade(url: str | URL, revision: str) -> None:
    """Take the database at `url` down to `revision` ("base" removes every table)."""
    with _migrating(url) as (config, _):
        command.downgrade(config, revision)


def current(url: str | URL) -> str | None:
    """The revision the database at `url` is at; None for an empty (unmigrated) database."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def head() -> str:
    """The newest revision this version of crowdquant knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    if found is None:
        raise MigrationError("no migration revisions found")
    return found


def revision(url: str | URL, message: str, rev_id: str | None = None) -> None:
    """Autogenerate a new revision from the models' difference to the database at `url`."""
    with _migrating(url) as (config, _):
        command.revision(config, message=message, autogenerate=True, rev_id=rev_id)
