"""Each round's score configs, the per-round-stake rules, and the near-duplicate
submissions recorded with each meta model.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05

Types spelled out in plain SQLAlchemy, as in 0001. Rounds opened before this revision keep
no score configs (None): they are read from the round's payout rule; meta models fixed
before it record no duplicates (None).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
RULES_BEFORE = ("classic", "legacy2017")
RULES_AFTER = (*RULES_BEFORE, "round-stake")


def _allow_rules(values: Sequence[str]) -> None:
    allowed = ", ".join(f"'{value}'" for value in values)
    with op.batch_alter_table("tournaments") as batch:
        batch.drop_constraint(op.f("ck_tournaments_rules"), type_="check")
        batch.create_check_constraint(op.f("ck_tournaments_rules"), f"rules IN ({allowed})")


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("score_configs", JSON, nullable=True))
    with op.batch_alter_table("meta_models") as batch:
        batch.add_column(sa.Column("duplicates", JSON, nullable=True))
    _allow_rules(RULES_AFTER)


def downgrade() -> None:
    _allow_rules(RULES_BEFORE)
    with op.batch_alter_table("meta_models") as batch:
        batch.drop_column("duplicates")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("score_configs")
