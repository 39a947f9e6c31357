"""Participants' models: an account enters a tournament through one or more named models.

A model's submissions, scores and payouts are history, so neither its account nor its
tournament can be deleted while it exists (ON DELETE RESTRICT).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, enum_type

if TYPE_CHECKING:
    from crowdquant.db.models.accounts import Account
    from crowdquant.db.models.submissions import Submission
    from crowdquant.db.models.tournaments import Tournament


class PayoutMode(enum.StrEnum):
    """Where a model's rewards go: into its stake (compounding) or to the owner's wallet."""

    COMPOUND = "compound"
    WALLET = "wallet"


class Model(HasId, Base):
    """A named model; names are unique within a tournament (as stored: lower-case them first)."""

    __tablename__ = "models"
    __table_args__ = (UniqueConstraint("tournament_id", "name"),)

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="RESTRICT"), index=True
    )
    tournament_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tournaments.id", ondelete="RESTRICT")
    )
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]
    payout_mode: Mapped[PayoutMode] = mapped_column(
        enum_type(PayoutMode, "payout_mode"), default=PayoutMode.COMPOUND
    )
    bio: Mapped[str | None] = mapped_column(Text)
    """The owner's public words about the model (numerapi's `set_bio`)."""
    link_text: Mapped[str | None] = mapped_column(String(100))
    link_url: Mapped[str | None] = mapped_column(String(500))
    """A public link the owner chose (numerapi's `set_link`)."""

    account: Mapped[Account] = relationship(back_populates="models")
    tournament: Mapped[Tournament] = relationship(back_populates="models")
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="model", passive_deletes="all"
    )
