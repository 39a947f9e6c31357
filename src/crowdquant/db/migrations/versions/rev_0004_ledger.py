"""The ledger: an append-only journal of transactions and postings, and the balances
projected from it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22

Types spelled out in plain SQLAlchemy, as in 0001: amounts are `NUMERIC(38, 0)` on
PostgreSQL and their decimal text on SQLite (what `TokenAmount` stores), the currency a
`String(32)` with a named CHECK (what `enum_type` renders).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
AMOUNT = sa.Numeric(precision=38, scale=0).with_variant(sa.String(length=39), "sqlite")
CURRENCIES = ("NMR", "USD")


def _currency(table: str) -> list[sa.Column[str] | sa.CheckConstraint]:
    allowed = ", ".join(f"'{value}'" for value in CURRENCIES)
    return [
        sa.Column("currency", sa.String(length=32), nullable=False),
        sa.CheckConstraint(f"currency IN ({allowed})", name=op.f(f"ck_{table}_currency")),
    ]


def upgrade() -> None:
    op.create_table(
        "ledger_transactions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("sequence", sa.BigInteger(), nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        *_currency("ledger_transactions"),
        sa.Column("memo", sa.Text(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("previous_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transactions")),
        sa.UniqueConstraint("sequence", name=op.f("uq_ledger_transactions_sequence")),
        sa.UniqueConstraint("event_key", name=op.f("uq_ledger_transactions_event_key")),
        sa.UniqueConstraint("hash", name=op.f("uq_ledger_transactions_hash")),
    )
    op.create_table(
        "ledger_postings",
        sa.Column("transaction_id", sa.Uuid(), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.ForeignKeyConstraint(
            ["transaction_id"],
            ["ledger_transactions.id"],
            name=op.f("fk_ledger_postings_transaction_id_ledger_transactions"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("transaction_id", "account", name=op.f("pk_ledger_postings")),
    )
    op.create_index(op.f("ix_ledger_postings_account"), "ledger_postings", ["account"])
    op.create_table(
        "ledger_balances",
        sa.Column("account", sa.String(length=64), nullable=False),
        *_currency("ledger_balances"),
        sa.Column("balance", AMOUNT, nullable=False),
        sa.Column("last_sequence", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("account", "currency", name=op.f("pk_ledger_balances")),
    )


def downgrade() -> None:
    op.drop_table("ledger_balances")
    op.drop_index(op.f("ix_ledger_postings_account"), table_name="ledger_postings")
    op.drop_table("ledger_postings")
    op.drop_table("ledger_transactions")
