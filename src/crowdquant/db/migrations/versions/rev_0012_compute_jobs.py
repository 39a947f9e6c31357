"""Uploaded models and the jobs that run them in the sandbox.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05

Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def _foreign_key(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"), ondelete="RESTRICT"
    )


def upgrade() -> None:
    op.create_table(
        "model_uploads",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("file_key", sa.String(length=512), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("data_version", sa.String(length=64), nullable=True),
        sa.Column("runtime", sa.String(length=64), nullable=False),
        sa.Column("scan", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("size >= 0", name=op.f("ck_model_uploads_size_not_negative")),
        _foreign_key("model_uploads", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_uploads")),
    )
    op.create_index(op.f("ix_model_uploads_model_id"), "model_uploads", ["model_id"])
    op.create_table(
        "compute_jobs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("upload_id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("failure", sa.String(length=32), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("log", sa.Text(), nullable=True),
        sa.Column("history", JSON, nullable=False),
        sa.Column("runtime", sa.String(length=64), nullable=True),
        sa.Column("runtime_lock_hash", sa.String(length=80), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_holder", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", TIMESTAMP, nullable=True),
        sa.Column("seconds", sa.Float(), nullable=True),
        sa.Column("submission_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_compute_jobs_attempts_not_negative")),
        sa.CheckConstraint(
            "status IN ('pending', 'running', 'validating', 'success', 'failed', 'error')",
            name=op.f("ck_compute_jobs_status"),
        ),
        _foreign_key("compute_jobs", "upload_id", "model_uploads"),
        _foreign_key("compute_jobs", "round_id", "rounds"),
        _foreign_key("compute_jobs", "submission_id", "submissions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_compute_jobs")),
        sa.UniqueConstraint(
            "upload_id", "round_id", name=op.f("uq_compute_jobs_upload_id_round_id")
        ),
    )
    op.create_index(op.f("ix_compute_jobs_round_id"), "compute_jobs", ["round_id"])
    op.create_index(op.f("ix_compute_jobs_status"), "compute_jobs", ["status"])


def downgrade() -> None:
    op.drop_table("compute_jobs")
    op.drop_table("model_uploads")
