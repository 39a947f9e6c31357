"""Stakes: what each model puts at risk, and every change a participant asked for.

The tokens themselves live in the ledger (`stake:<model>`, `release:<model>`); these rows
record the business side of each movement, written in the same database transaction as its
ledger posting (`event_key`):

- `stake_changes`: one row per stake request (increase, decrease). An increase is done at
  once; a decrease moves the tokens to the model's pending release and waits, `pending`,
  until `due_round` resolves (the last round they were at risk in), then `released`. A
  decrease with no round at risk is released at once (`due_round_id` NULL).
- `round_stakes`: a round's stakes. Classic rules freeze each model's stake at the round's
  close (`at_risk`); the 2017 rules stake per round, with a `confidence`, while it is open.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, Index, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, TokenAmount, enum_type

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.tournaments import Round


class StakeChangeKind(enum.StrEnum):
    INCREASE = "increase"
    DECREASE = "decrease"


class StakeChangeStatus(enum.StrEnum):
    DONE = "done"
    """An increase: the tokens are staked."""
    PENDING = "pending"
    """A decrease waiting for its due round to resolve; still burnable."""
    RELEASED = "released"
    """A decrease paid back to the wallet (what was left of it after burns)."""


class StakeChange(HasId, Base):
    __tablename__ = "stake_changes"
    __table_args__ = (
        Index(None, "model_id", "requested_at"),
        CheckConstraint("status != 'released' OR released_at IS NOT NULL", name="released_when"),
    )

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    kind: Mapped[StakeChangeKind] = mapped_column(enum_type(StakeChangeKind, "kind"))
    amount: Mapped[int] = mapped_column(TokenAmount())
    """What was asked for, in 10^-18 NMR (always positive)."""
    status: Mapped[StakeChangeStatus] = mapped_column(enum_type(StakeChangeStatus, "status"))
    due_round_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), index=True
    )
    requested_at: Mapped[datetime]
    released_at: Mapped[datetime | None]
    released: Mapped[int | None] = mapped_column(TokenAmount())
    """What went back to the wallet (less than `amount` if burns took part of it)."""
    event_key: Mapped[str] = mapped_column(String(200), unique=True)

    model: Mapped[Model] = relationship()
    due_round: Mapped[Round | None] = relationship()


class RoundStake(HasId, Base):
    __tablename__ = "round_stakes"
    __table_args__ = (
        UniqueConstraint("round_id", "model_id"),
        CheckConstraint(
            "confidence IS NULL OR (confidence > 0 AND confidence <= 1)", name="confidence_range"
        ),
    )

    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rounds.id", ondelete="RESTRICT"))
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), index=True
    )
    at_risk: Mapped[int] = mapped_column(TokenAmount())
    confidence: Mapped[Decimal | None] = mapped_column(Numeric(12, 10))
    """The 2017 rules' confidence in (0, 1]; None under classic rules."""
    staked_at: Mapped[datetime]

    round: Mapped[Round] = relationship()
    model: Mapped[Model] = relationship()
