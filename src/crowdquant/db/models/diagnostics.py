"""Diagnostics requests: a model's validation predictions, scored in the background.

`status` goes pending → running → done (with `result`) or failed (with `error`).
`request_number` counts this model's requests, this one included: repeated looks at the
validation data overfit it, so the count is shown beside the results.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, enum_type

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model


class DiagnosticsStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Diagnostics(HasId, Base):
    __tablename__ = "diagnostics"
    __table_args__ = (
        UniqueConstraint("model_id", "request_number"),
        CheckConstraint("request_number > 0", name="request_number_positive"),
    )

    model_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("models.id", ondelete="RESTRICT"))
    request_number: Mapped[int]
    dataset_version: Mapped[str] = mapped_column(String(64))
    file_key: Mapped[str] = mapped_column(String(512))
    filename: Mapped[str] = mapped_column(String(255))
    status: Mapped[DiagnosticsStatus] = mapped_column(
        enum_type(DiagnosticsStatus, "status"), default=DiagnosticsStatus.PENDING, index=True
    )
    error: Mapped[str | None] = mapped_column(Text)
    result: Mapped[dict[str, Any] | None]  # `tournament.diagnostics.report.DiagnosticsReport`
    created_at: Mapped[datetime]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]

    model: Mapped[Model] = relationship()
