"""Round results: what rewards were scaled down to, as amounts in columns of their own.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05

`round_results.scale` was text: `full`, or `nmr:<10^-18 NMR>`, `usd:<cents>` or both joined
by a comma. Its amounts move to `nmr_scaled_to` and `usd_scaled_to` (NULL when paid in full);
the downgrade writes the text back from them. Types spelled out in plain SQLAlchemy, as in
0001.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT = sa.Numeric(precision=38, scale=0).with_variant(sa.String(length=39), "sqlite")
RESULTS = sa.table(
    "round_results",
    sa.column("id", sa.Uuid()),
    sa.column("scale", sa.String(length=64)),
    sa.column("nmr_scaled_to", AMOUNT),
    sa.column("usd_scaled_to", sa.BigInteger()),
)


def _amount(units: int, connection: sa.Connection) -> int | str:
    """An NMR amount as its column stores it: decimal text on SQLite (see `TokenAmount`)."""
    return str(units) if connection.dialect.name == "sqlite" else units


def upgrade() -> None:
    with op.batch_alter_table("round_results") as batch:
        batch.add_column(sa.Column("nmr_scaled_to", AMOUNT, nullable=True))
        batch.add_column(sa.Column("usd_scaled_to", sa.BigInteger(), nullable=True))
    connection = op.get_bind()
    scaled: list[tuple[uuid.UUID, dict[str, str]]] = [
        (row_id, dict(part.split(":", 1) for part in scale.split(",") if ":" in part))
        for row_id, scale in connection.execute(sa.select(RESULTS.c.id, RESULTS.c.scale))
    ]
    for row_id, held in scaled:
        if held:
            connection.execute(
                RESULTS.update()
                .where(RESULTS.c.id == row_id)
                .values(
                    nmr_scaled_to=_amount(int(held["nmr"]), connection) if "nmr" in held else None,
                    usd_scaled_to=int(held["usd"]) if "usd" in held else None,
                )
            )
    with op.batch_alter_table("round_results") as batch:
        batch.drop_column("scale")


def downgrade() -> None:
    with op.batch_alter_table("round_results") as batch:
        batch.add_column(sa.Column("scale", sa.String(length=64), nullable=True))
    connection = op.get_bind()
    rows = connection.execute(
        sa.select(RESULTS.c.id, RESULTS.c.nmr_scaled_to, RESULTS.c.usd_scaled_to)
    ).all()
    for row_id, nmr, usd in rows:
        short = (("nmr", nmr), ("usd", usd))
        scale = ",".join(f"{kind}:{int(held)}" for kind, held in short if held is not None)
        connection.execute(
            RESULTS.update().where(RESULTS.c.id == row_id).values(scale=scale or "full")
        )
    with op.batch_alter_table("round_results") as batch:
        batch.alter_column("scale", existing_type=sa.String(length=64), nullable=False)
        batch.drop_column("usd_scaled_to")
        batch.drop_column("nmr_scaled_to")
