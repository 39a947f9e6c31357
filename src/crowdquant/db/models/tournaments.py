"""Tournaments and their rounds.

A tournament (numerapi's `tournament: Int`, e.g. 8) fixes the rules and the cadence; each
round has an open window, a live era and a lifecycle `open → closed → scoring → resolved`.
Rounds are history: a tournament that has rounds cannot be deleted (ON DELETE RESTRICT).
"""

from __future__ import annotations

import enum
import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, enum_type
from crowdquant.db.enums import Cadence as Cadence
from crowdquant.db.enums import Rules as Rules

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.submissions import Submission


class RoundStatus(enum.StrEnum):
    OPEN = "open"
    CLOSED = "closed"
    SCORING = "scoring"
    RESOLVED = "resolved"


class Tournament(HasId, Base):
    __tablename__ = "tournaments"
    __table_args__ = (CheckConstraint("number > 0", name="number_positive"),)

    number: Mapped[int] = mapped_column(unique=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    rules: Mapped[Rules] = mapped_column(enum_type(Rules, "rules"))
    cadence: Mapped[Cadence] = mapped_column(enum_type(Cadence, "cadence"))
    dataset_version: Mapped[str] = mapped_column(String(64))
    settings: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime]

    rounds: Mapped[list[Round]] = relationship(back_populates="tournament", passive_deletes="all")
    models: Mapped[list[Model]] = relationship(back_populates="tournament", passive_deletes="all")


class Round(HasId, Base):
    """One round of a tournament; `number` counts from 1 (numerapi's 0 means "the current one").

    `dataset_version` records the version the round's live era was published from, so the
    round can be replayed after the tournament moves to a newer version; `market_date` the
    market's trading day behind the live era, from which its targets are computed;
    `payout_rule` the rule and parameters its stakes are paid or burned by.
    """

    __tablename__ = "rounds"
    __table_args__ = (
        UniqueConstraint("tournament_id", "number"),
        CheckConstraint("number > 0", name="number_positive"),
        CheckConstraint(
            "open_time <= close_staking_time AND close_staking_time <= close_time",
            name="window_ordered",
        ),
        CheckConstraint(
            "resolve_time IS NULL OR resolve_time >= close_time", name="resolves_after_close"
        ),
    )

    tournament_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("tournaments.id", ondelete="RESTRICT")
    )
    number: Mapped[int]
    status: Mapped[RoundStatus] = mapped_column(enum_type(RoundStatus, "status"))
    open_time: Mapped[datetime]
    close_staking_time: Mapped[datetime]
    close_time: Mapped[datetime]
    resolve_time: Mapped[datetime | None]
    live_era: Mapped[str] = mapped_column(String(16))
    dataset_version: Mapped[str] = mapped_column(String(64))
    market_date: Mapped[date | None]
    """Operator only: the trading day the live era shows (None if the publisher did not say)."""
    payout_rule: Mapped[dict[str, Any]] = mapped_column(default=dict)
    """The payout rule this round resolves by, as versioned data (`payouts.rule_to_data`),
    fixed when it opens."""
    score_configs: Mapped[list[dict[str, Any]] | None] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql")
    )
    """The rule as numerapi's score configs (`payouts.configs_to_data`), fixed when it opens;
    None for rounds opened before they were recorded."""

    tournament: Mapped[Tournament] = relationship(back_populates="rounds")
    submissions: Mapped[list[Submission]] = relationship(
        back_populates="round", passive_deletes="all"
    )
