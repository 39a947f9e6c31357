"""Submissions: when an upload's file was purged by retention.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05

`submissions.purged_at` is NULL while the file is kept; set, the row stays listed but its
file is gone from storage (`tournament/retention.py`). Types spelled out in plain SQLAlchemy,
as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("purged_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("purged_at")
