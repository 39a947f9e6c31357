"""Scoring: round scores, meta models, recorded round targets, diagnostics; rounds' market date.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21

Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def _foreign_key(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"), ondelete="RESTRICT"
    )


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("market_date", sa.Date(), nullable=True))

    op.create_table(
        "round_scores",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("submission_id", sa.Uuid(), nullable=False),
        sa.Column("metric", sa.String(length=32), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("value", sa.Float(), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("scoring_version", sa.String(length=16), nullable=False),
        sa.Column("computed_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("day >= 0", name=op.f("ck_round_scores_day_not_negative")),
        _foreign_key("round_scores", "round_id", "rounds"),
        _foreign_key("round_scores", "model_id", "models"),
        _foreign_key("round_scores", "submission_id", "submissions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_scores")),
        sa.UniqueConstraint(
            "round_id",
            "model_id",
            "metric",
            "day",
            name=op.f("uq_round_scores_round_id_model_id_metric_day"),
        ),
    )
    op.create_index(op.f("ix_round_scores_model_id_metric"), "round_scores", ["model_id", "metric"])

    op.create_table(
        "meta_models",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("weighting", sa.String(length=32), nullable=False),
        sa.Column("weights", JSON, nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        _foreign_key("meta_models", "round_id", "rounds"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_meta_models")),
        sa.UniqueConstraint("round_id", name=op.f("uq_meta_models_round_id")),
    )

    op.create_table(
        "round_targets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("storage_key", sa.String(length=512), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("recorded_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("day > 0", name=op.f("ck_round_targets_day_positive")),
        _foreign_key("round_targets", "round_id", "rounds"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_targets")),
        sa.UniqueConstraint("round_id", "day", name=op.f("uq_round_targets_round_id_day")),
    )

    op.create_table(
        "diagnostics",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("request_number", sa.Integer(), nullable=False),
        sa.Column("dataset_version", sa.String(length=64), nullable=False),
        sa.Column("file_key", sa.String(length=512), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("result", JSON, nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("started_at", TIMESTAMP, nullable=True),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint(
            "request_number > 0", name=op.f("ck_diagnostics_request_number_positive")
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'done', 'failed')",
            name=op.f("ck_diagnostics_status"),
        ),
        _foreign_key("diagnostics", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_diagnostics")),
        sa.UniqueConstraint(
            "model_id", "request_number", name=op.f("uq_diagnostics_model_id_request_number")
        ),
    )
    op.create_index(op.f("ix_diagnostics_status"), "diagnostics", ["status"])


def downgrade() -> None:
    for table in ("diagnostics", "round_targets", "meta_models", "round_scores"):
        op.drop_table(table)
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("market_date")
