"""What scoring a round stores: its inputs (meta model, daily targets) and one row per score.

Scores are history and inputs are kept so any round can be replayed: a `RoundScore` row per
(round, model, metric, day) with the scoring version that made it; the round's `MetaModel`
and each day's `RoundTargets` as files in storage under the operator-only prefix, with their
checksums. Day 0 holds the scores that need no target (CWMM, originality); days 1…horizon
the scores against the targets known after that many trading days.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, time_ordered_id

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.submissions import Submission
    from crowdquant.db.models.tournaments import Round


class RoundScore(HasId, Base):
    __tablename__ = "round_scores"
    __table_args__ = (
        UniqueConstraint("round_id", "model_id", "metric", "day"),
        Index(None, "model_id", "metric"),
        CheckConstraint("day >= 0", name="day_not_negative"),
    )

    # millions of rows, appended a day at a time and never shown by id: time-ordered keys
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=time_ordered_id, sort_order=-1)
    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rounds.id", ondelete="RESTRICT"))
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT")
    )
    metric: Mapped[str] = mapped_column(String(32))
    day: Mapped[int]
    value: Mapped[float | None] = mapped_column(Float)
    """None where the score is undefined (a constant submission's CORR)."""
    late: Mapped[bool] = mapped_column(default=False)
    scoring_version: Mapped[str] = mapped_column(String(16))
    computed_at: Mapped[datetime]

    round: Mapped[Round] = relationship()
    model: Mapped[Model] = relationship()
    submission: Mapped[Submission] = relationship()


class MetaModel(HasId, Base):
    """A round's meta model, fixed at close: the blend of its on-time submissions.

    `weights` maps each contributing submission id to its weight (equal weights until stakes
    exist); the blended predictions are stored under `storage_key` (operator only).
    `duplicates` records the near-duplicate on-time submissions found when it was fixed
    (`scoring.similarity.near_duplicates`): ``"dropped"`` maps a submission id to the one of
    the same account kept in its place (it has no weight and no stake at risk), and
    ``"flagged"`` lists pairs of different accounts as ``[id, id, spearman]``; None for
    rounds fixed before they were recorded.
    """

    __tablename__ = "meta_models"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), unique=True
    )
    weighting: Mapped[str] = mapped_column(String(32))
    weights: Mapped[dict[str, Any]] = mapped_column(default=dict)
    duplicates: Mapped[dict[str, Any] | None]
    storage_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    round: Mapped[Round] = relationship()


class RoundTargets(HasId, Base):
    """The live era's targets as known `day` trading days into the horizon (operator only)."""

    __tablename__ = "round_targets"
    __table_args__ = (
        UniqueConstraint("round_id", "day"),
        CheckConstraint("day > 0", name="day_positive"),
    )

    round_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("rounds.id", ondelete="RESTRICT"))
    day: Mapped[int]
    storage_key: Mapped[str] = mapped_column(String(512))
    sha256: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime]
