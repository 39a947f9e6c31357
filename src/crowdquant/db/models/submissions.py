"""Uploaded predictions: one row per upload of a model to a round.

The file itself lives in storage under `file_key`; `filename` is the name the participant
uploaded. A submission starts `pending` and is validated once (`valid` with its row count,
or `invalid` with the reason in `error`). `late` marks an upload after the round's close.
Submissions are scored history: their round and model cannot be deleted (ON DELETE RESTRICT).

A `SubmissionCheck` is one figure of an upload computed when it was uploaded (a 2017
round's validation log-loss, consistency, originality and test-set log-loss); who may see
which is `tournament.visibility`'s business (`test_logloss` is the operator's).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, Float, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, enum_type

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.tournaments import Round


class SubmissionStatus(enum.StrEnum):
    PENDING = "pending"
    VALID = "valid"
    INVALID = "invalid"


class Submission(HasId, Base):
    __tablename__ = "submissions"
    __table_args__ = (
        # A model's submissions to a round (the latest one counts), and a model's history.
        Index(None, "model_id", "round_id"),
        # The retention sweep's pages: uploads in the order made, a model's newest, the
        # rows that name a page of stored files.
        Index(None, "created_at", "id"),
        Index(None, "model_id", "created_at", "id"),
        Index(None, "file_key"),
        CheckConstraint("n_rows IS NULL OR n_rows >= 0", name="n_rows_not_negative"),
        CheckConstraint(
            "status = 'pending' OR validated_at IS NOT NULL", name="validated_when_decided"
        ),
    )

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), index=True
    )
    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    file_key: Mapped[str] = mapped_column(String(512))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[SubmissionStatus] = mapped_column(
        enum_type(SubmissionStatus, "status"), default=SubmissionStatus.PENDING
    )
    error: Mapped[str | None] = mapped_column(Text)
    late: Mapped[bool] = mapped_column(default=False)
    n_rows: Mapped[int | None]
    created_at: Mapped[datetime]
    validated_at: Mapped[datetime | None]
    purged_at: Mapped[datetime | None]
    """When retention deleted the file (`tournament/retention.py`); the row stays listed."""

    round: Mapped[Round] = relationship(back_populates="submissions")
    model: Mapped[Model] = relationship(back_populates="submissions")


class SubmissionCheck(HasId, Base):
    __tablename__ = "submission_checks"
    __table_args__ = (UniqueConstraint("submission_id", "metric"),)

    submission_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT")
    )
    metric: Mapped[str] = mapped_column(String(32))
    value: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime]
