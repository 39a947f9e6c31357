"""Uploaded models and the jobs that run them.

A `ModelUpload` is a cloudpickled ``predict`` a participant uploaded for one of their models
(the file in storage under `file_key`); the model's newest `enabled` upload is the one its
rounds run. `scan` is the static scan's advice.

A `ComputeJob` runs one upload on one round's live features: `status` goes pending →
running → validating → success (with the `submission` it made), failed (the model's fault,
`failure` naming why) or error (the platform's). `history` keeps every status with its
time and description, `log` the end of the run's output. A worker claims a job by
setting `lease_holder` and `lease_expires_at`; a job whose lease ran out while running is
claimed again (`attempts` counts the claims).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, CheckConstraint, Float, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, enum_type

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.submissions import Submission
    from crowdquant.db.models.tournaments import Round


class ComputeJobStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    VALIDATING = "validating"
    SUCCESS = "success"
    FAILED = "failed"
    ERROR = "error"


class ModelUpload(HasId, Base):
    __tablename__ = "model_uploads"
    __table_args__ = (CheckConstraint("size >= 0", name="size_not_negative"),)

    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    file_key: Mapped[str] = mapped_column(String(512))
    size: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    data_version: Mapped[str | None] = mapped_column(String(64))
    runtime: Mapped[str] = mapped_column(String(64))
    scan: Mapped[str | None] = mapped_column(Text)
    enabled: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[datetime]

    model: Mapped[Model] = relationship()


class ComputeJob(HasId, Base):
    __tablename__ = "compute_jobs"
    __table_args__ = (
        UniqueConstraint("upload_id", "round_id"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
    )

    upload_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("model_uploads.id", ondelete="RESTRICT")
    )
    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[ComputeJobStatus] = mapped_column(
        enum_type(ComputeJobStatus, "status"), default=ComputeJobStatus.PENDING, index=True
    )
    failure: Mapped[str | None] = mapped_column(String(32))
    message: Mapped[str | None] = mapped_column(Text)
    log: Mapped[str | None] = mapped_column(Text)
    history: Mapped[list[dict[str, Any]]] = mapped_column(
        JSON().with_variant(JSONB(), "postgresql")
    )
    """``{"status", "description", "at"}`` for every status the job went through."""
    runtime: Mapped[str | None] = mapped_column(String(64))
    runtime_lock_hash: Mapped[str | None] = mapped_column(String(80))
    attempts: Mapped[int] = mapped_column(default=0)
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    seconds: Mapped[float | None] = mapped_column(Float())
    submission_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT")
    )
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    upload: Mapped[ModelUpload] = relationship()
    round_: Mapped[Round] = relationship()
    submission: Mapped[Submission | None] = relationship()
