"""Models' public bio and link; dataset version aliases.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-05

`models.bio`, `link_text` and `link_url` are NULL until their owner sets them (numerapi's
`set_bio`, `set_link`). `dataset_aliases` names a published version under other names
(`crowdquant data alias v5.2 v5.3`). Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("models") as batch:
        batch.add_column(sa.Column("bio", sa.Text(), nullable=True))
        batch.add_column(sa.Column("link_text", sa.String(length=100), nullable=True))
        batch.add_column(sa.Column("link_url", sa.String(length=500), nullable=True))
    op.create_table(
        "dataset_aliases",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("alias", sa.String(length=64), nullable=False),
        sa.Column("version", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dataset_aliases")),
        sa.UniqueConstraint("alias", name=op.f("uq_dataset_aliases_alias")),
    )


def downgrade() -> None:
    op.drop_table("dataset_aliases")
    with op.batch_alter_table("models") as batch:
        batch.drop_column("link_url")
        batch.drop_column("link_text")
        batch.drop_column("bio")
