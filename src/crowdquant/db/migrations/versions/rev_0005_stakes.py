"""Stakes and payouts: stake changes, round stakes, payouts, round results; each round's
payout rule and each model's payout mode.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-21

Types spelled out in plain SQLAlchemy, as in 0001. Rounds opened before this revision get
the default rule of their tournament's kind, as data (what `payouts.rule_to_data` writes).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)
AMOUNT = sa.Numeric(precision=38, scale=0).with_variant(sa.String(length=39), "sqlite")
DEFAULT_RULES = {  # payouts.rule_to_data(payouts.default_rule(kind)) at this revision
    "classic": {
        "version": "classic-v1",
        "corr_multiplier": "0.5",
        "mmc_multiplier": "2",
        "clip": "0.05",
        "stake_threshold": str(72_000 * 10**18),
    },
    "legacy2017": {
        "version": "legacy2017-v1",
        "benchmark_logloss": "0.69314718",
        "consistency_threshold": "0.75",
        "staking_pool_usd": "100000",
        "rank_prize_usd": "1000",
        "rank_prize_decay": "1.2",
        "rank_prize_places": "100",
        "nmr_per_usd": "4",
    },
}


def _foreign_key(table: str, column: str, parent: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        [column], [f"{parent}.id"], name=op.f(f"fk_{table}_{column}_{parent}"), ondelete="RESTRICT"
    )


def _one_of(table: str, column: str, values: Sequence[str]) -> sa.CheckConstraint:
    allowed = ", ".join(f"'{value}'" for value in values)
    return sa.CheckConstraint(f"{column} IN ({allowed})", name=op.f(f"ck_{table}_{column}"))


def upgrade() -> None:
    with op.batch_alter_table("rounds") as batch:
        batch.add_column(sa.Column("payout_rule", JSON, nullable=True))
    rounds = sa.table("rounds", sa.column("payout_rule", JSON), sa.column("tournament_id"))
    tournaments = sa.table("tournaments", sa.column("id"), sa.column("rules"))
    for kind, rule in DEFAULT_RULES.items():
        of_kind = sa.select(tournaments.c.id).where(tournaments.c.rules == kind)
        op.execute(
            rounds.update()
            .where(rounds.c.tournament_id.in_(of_kind))
            .values(payout_rule=sa.literal(rule, JSON))
        )
    with op.batch_alter_table("rounds") as batch:
        batch.alter_column("payout_rule", existing_type=JSON, nullable=False)

    with op.batch_alter_table("models") as batch:
        batch.add_column(
            sa.Column(
                "payout_mode", sa.String(length=32), nullable=False, server_default="compound"
            )
        )
        batch.create_check_constraint(
            op.f("ck_models_payout_mode"), "payout_mode IN ('compound', 'wallet')"
        )
    with op.batch_alter_table("models") as batch:
        batch.alter_column("payout_mode", existing_type=sa.String(length=32), server_default=None)

    op.create_table(
        "stake_changes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("amount", AMOUNT, nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("due_round_id", sa.Uuid(), nullable=True),
        sa.Column("requested_at", TIMESTAMP, nullable=False),
        sa.Column("released_at", TIMESTAMP, nullable=True),
        sa.Column("released", AMOUNT, nullable=True),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        _one_of("stake_changes", "kind", ("increase", "decrease")),
        _one_of("stake_changes", "status", ("done", "pending", "released")),
        sa.CheckConstraint(
            "status != 'released' OR released_at IS NOT NULL",
            name=op.f("ck_stake_changes_released_when"),
        ),
        _foreign_key("stake_changes", "model_id", "models"),
        _foreign_key("stake_changes", "due_round_id", "rounds"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_stake_changes")),
        sa.UniqueConstraint("event_key", name=op.f("uq_stake_changes_event_key")),
    )
    op.create_index(
        op.f("ix_stake_changes_model_id_requested_at"),
        "stake_changes",
        ["model_id", "requested_at"],
    )
    op.create_index(op.f("ix_stake_changes_due_round_id"), "stake_changes", ["due_round_id"])

    op.create_table(
        "round_stakes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("at_risk", AMOUNT, nullable=False),
        sa.Column("confidence", sa.Numeric(precision=12, scale=10), nullable=True),
        sa.Column("staked_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint(
            "confidence IS NULL OR (confidence > 0 AND confidence <= 1)",
            name=op.f("ck_round_stakes_confidence_range"),
        ),
        _foreign_key("round_stakes", "round_id", "rounds"),
        _foreign_key("round_stakes", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_stakes")),
        sa.UniqueConstraint("round_id", "model_id", name=op.f("uq_round_stakes_round_id_model_id")),
    )
    op.create_index(op.f("ix_round_stakes_model_id"), "round_stakes", ["model_id"])

    op.create_table(
        "round_payouts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("model_id", sa.Uuid(), nullable=False),
        sa.Column("at_risk", AMOUNT, nullable=False),
        sa.Column("nmr", AMOUNT, nullable=False),
        sa.Column("usd", sa.BigInteger(), nullable=False),
        sa.Column("rule_version", sa.String(length=32), nullable=False),
        sa.Column("inputs", JSON, nullable=False),
        sa.Column("event_key", sa.String(length=200), nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=False),
        sa.CheckConstraint("usd >= 0", name=op.f("ck_round_payouts_usd_not_negative")),
        _foreign_key("round_payouts", "round_id", "rounds"),
        _foreign_key("round_payouts", "model_id", "models"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_payouts")),
        sa.UniqueConstraint(
            "round_id", "model_id", name=op.f("uq_round_payouts_round_id_model_id")
        ),
    )
    op.create_index(op.f("ix_round_payouts_model_id"), "round_payouts", ["model_id"])

    op.create_table(
        "round_results",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("round_id", sa.Uuid(), nullable=False),
        sa.Column("participants", sa.Integer(), nullable=False),
        sa.Column("stakers", sa.Integer(), nullable=False),
        sa.Column("at_risk", AMOUNT, nullable=False),
        sa.Column("usd_paid", sa.BigInteger(), nullable=False),
        sa.Column("nmr_paid", AMOUNT, nullable=False),
        sa.Column("nmr_burned", AMOUNT, nullable=False),
        sa.Column("payout_factor", sa.String(length=64), nullable=True),
        sa.Column("scale", sa.String(length=64), nullable=False),
        sa.Column("resolved_at", TIMESTAMP, nullable=False),
        _foreign_key("round_results", "round_id", "rounds"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_round_results")),
        sa.UniqueConstraint("round_id", name=op.f("uq_round_results_round_id")),
    )


def downgrade() -> None:
    op.drop_table("round_results")
    op.drop_index(op.f("ix_round_payouts_model_id"), table_name="round_payouts")
    op.drop_table("round_payouts")
    op.drop_index(op.f("ix_round_stakes_model_id"), table_name="round_stakes")
    op.drop_table("round_stakes")
    op.drop_index(op.f("ix_stake_changes_due_round_id"), table_name="stake_changes")
    op.drop_index(op.f("ix_stake_changes_model_id_requested_at"), table_name="stake_changes")
    op.drop_table("stake_changes")
    with op.batch_alter_table("models") as batch:
        batch.drop_constraint(op.f("ck_models_payout_mode"), type_="check")
        batch.drop_column("payout_mode")
    with op.batch_alter_table("rounds") as batch:
        batch.drop_column("payout_rule")
