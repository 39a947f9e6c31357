"""Accounts' wallet addresses; rounds' ids on the tournament contract.

Revision ID: 0018
Revises: 0015
Create Date: 2026-12-05

`accounts.wallet_address` is NULL until the account registers the EVM address it stakes
from. `chain_rounds` gives each round opened on chain its id there. `chain_events` mirrors
the contracts' events, once per (transaction, log index), read from the block after
`chain_cursors`' one. Types spelled out in plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)
AMOUNT = sa.Numeric(precision=38, scale=0).with_variant(sa.String(length=39), "sqlite")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("wallet_address", sa.String(length=42), nullable=True))
        batch.create_unique_constraint(op.f("uq_accounts_wallet_address"), ["wallet_address"])
    op.create_table(
        "chain_rounds",
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("chain_round_id", sa.BigInteger(), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["round_id"],
            ["rounds.id"],
            name=op.f("fk_chain_rounds_round_id_rounds"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("round_id", name=op.f("pk_chain_rounds")),
        sa.UniqueConstraint("chain_round_id", name=op.f("uq_chain_rounds_chain_round_id")),
    )
    op.create_table(
        "chain_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("chain_id", sa.BigInteger(), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("tx_hash", sa.String(length=66), nullable=False),
        sa.Column("log_index", sa.BigInteger(), nullable=False),
        sa.Column("contract", sa.String(length=42), nullable=False),
        sa.Column("event", sa.String(length=32), nullable=False),
        sa.Column("round_id", sa.BigInteger(), nullable=True),
        sa.Column("model", sa.String(length=66), nullable=True),
        sa.Column("account", sa.String(length=42), nullable=True),
        sa.Column("counterparty", sa.String(length=42), nullable=True),
        sa.Column("amount", AMOUNT, nullable=True),
        sa.Column("args", JSON, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_chain_events")),
        sa.UniqueConstraint("tx_hash", "log_index", name=op.f("uq_chain_events_tx_hash_log_index")),
    )
    op.create_index(op.f("ix_chain_events_block_number"), "chain_events", ["block_number"])
    op.create_index(op.f("ix_chain_events_account"), "chain_events", ["account"])
    op.create_table(
        "chain_cursors",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("block_number", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIMESTAMP, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_chain_cursors")),
    )


def downgrade() -> None:
    op.drop_table("chain_cursors")
    op.drop_index(op.f("ix_chain_events_account"), table_name="chain_events")
    op.drop_index(op.f("ix_chain_events_block_number"), table_name="chain_events")
    op.drop_table("chain_events")
    op.drop_table("chain_rounds")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("uq_accounts_wallet_address"), type_="unique")
        batch.drop_column("wallet_address")
