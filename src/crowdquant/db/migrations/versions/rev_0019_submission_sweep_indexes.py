"""Indexes for the retention sweep's pages of submissions.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06

The retention sweep reads uploads a page at a time in the order they were made
(`created_at`, `id`), each model's newest few (`model_id`, `created_at`, `id`), and which of a
page of stored files a row names (`file_key`): with these indexes a page costs the same
whatever the number of uploads.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(op.f("ix_submissions_created_at_id"), "submissions", ["created_at", "id"])
    op.create_index(
        op.f("ix_submissions_model_id_created_at_id"),
        "submissions",
        ["model_id", "created_at", "id"],
    )
    op.create_index(op.f("ix_submissions_file_key"), "submissions", ["file_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_submissions_file_key"), table_name="submissions")
    op.drop_index(op.f("ix_submissions_model_id_created_at_id"), table_name="submissions")
    op.drop_index(op.f("ix_submissions_created_at_id"), table_name="submissions")
