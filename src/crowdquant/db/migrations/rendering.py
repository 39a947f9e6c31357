"""How autogenerate writes the models' own column types into a revision file.

A revision must keep its meaning when the models' Python types change later, so it spells
the stored type out in plain SQLAlchemy instead of importing `crowdquant.db.base`.
"""

from __future__ import annotations

from typing import Any, Literal

from alembic.autogenerate.api import AutogenContext
from sqlalchemy.dialects.postgresql import JSONB

from crowdquant.db.base import MAX_TOKEN_DIGITS, TokenAmount, UTCDateTime


def render_item(kind: str, obj: Any, context: AutogenContext) -> str | Literal[False]:
    """Alembic's `render_item` hook; False leaves the item to Alembic's default rendering."""
    if kind != "type":
        return False
    if isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    if isinstance(obj, TokenAmount):
        return (
            f"sa.Numeric(precision={MAX_TOKEN_DIGITS}, scale=0)"
            f".with_variant(sa.String(length={MAX_TOKEN_DIGITS + 1}), 'sqlite')"
        )
    if isinstance(obj, JSONB):  # Alembic's default names `Text` without importing it
        context.imports.add("from sqlalchemy.dialects import postgresql")
        return "postgresql.JSONB()"
    return False
