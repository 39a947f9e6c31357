"""Transactions sent to an EVM chain, one per business event (`evm_transactions`).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05

Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "evm_transactions",
        sa.Column("business_key", sa.String(length=200), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("sender", sa.String(length=42), nullable=False),
        sa.Column("receiver", sa.String(length=42), nullable=False),
        sa.Column("call_data", sa.Text(), nullable=False),
        sa.Column("nonce", sa.BigInteger(), nullable=True),
        sa.Column("tx_hash", sa.String(length=66), nullable=True),
        sa.Column("raw_transaction", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=True),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'pending', 'mined', 'reverted', 'refused')",
            name=op.f("ck_evm_transactions_evm_transaction_status"),
        ),
        sa.PrimaryKeyConstraint("business_key", name=op.f("pk_evm_transactions")),
        sa.UniqueConstraint("tx_hash", name=op.f("uq_evm_transactions_tx_hash")),
    )
    op.create_index(op.f("ix_evm_transactions_sender"), "evm_transactions", ["sender"])


def downgrade() -> None:
    op.drop_index(op.f("ix_evm_transactions_sender"), table_name="evm_transactions")
    op.drop_table("evm_transactions")
