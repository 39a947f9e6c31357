"""Models: a public bio and link, set by their owner (numerapi's `set_bio`, `set_link`).

Revision ID: 0015
Revises: 0010
Create Date: 2026-12-05

All three columns are NULL until set. Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("bio", sa.Text(), nullable=True))
        batch.add_column(sa.Column("link_text", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("link_url", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.drop_column("link_url")
        batch.drop_column("link_text")
        batch.drop_column("bio")
