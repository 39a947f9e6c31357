"""Alembic's entry point: runs migrations on the connection `crowdquant.db.migrate` hands over.

Autogenerate compares against every model registered on `Base.metadata`. SQLite cannot
alter most things in place, so there operations run in batch mode (copy, rebuild, swap).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from crowdquant.db import models  # noqa: F401  (registers every table on Base.metadata)
from crowdquant.db.base import Base
from crowdquant.db.migrations.rendering import render_item


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError("run migrations through crowdquant.db.migrate, which passes a connection")
run_migrations(connection)
