"""Accounts' wallet addresses; rounds' ids on the tournament contract.

Revision ID: 0018
Revises: 0014
Create Date: 2026-12-05

`accounts.wallet_address` is NULL until the account registers the EVM address it stakes
from. `chain_rounds` gives each round opened on chain its id there. Types spelled out in
plain SQLAlchemy, as in 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMP = sa.DateTime(timezone=True)


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


def downgrade() -> None:
    op.drop_table("chain_rounds")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_constraint(op.f("uq_accounts_wallet_address"), type_="unique")
        batch.drop_column("wallet_address")
