"""The fund: a book per scored round and its daily returns.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21

Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fund_books",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("rule", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("market_date", sa.Date(), nullable=False),
        sa.Column("trade_date", sa.Date(), nullable=False),
        sa.Column("weights", JSON, nullable=False),
        sa.Column("gross", sa.Float(), nullable=False),
        sa.Column("net", sa.Float(), nullable=False),
        sa.Column("turnover", sa.Float(), nullable=False),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
            name=op.f("fk_fund_books_round_id_rounds"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_books")),
        sa.UniqueConstraint("round_id", name=op.f("uq_fund_books_round_id")),
    )
    op.create_table(
        "fund_returns",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("book_id", sa.Uuid(), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("gross_return", sa.Float(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=False),
        sa.Column("net_return", sa.Float(), nullable=False),
        sa.Column("cost_model", sa.String(length=32), nullable=False),
        sa.Column("booked_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["book_id"],
            ["fund_books.id"],
            name=op.f("fk_fund_returns_book_id_fund_books"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fund_returns")),
        sa.UniqueConstraint("book_id", "date", name=op.f("uq_fund_returns_book_id_date")),
    )


def downgrade() -> None:
    op.drop_table("fund_returns")
    op.drop_table("fund_books")
