"""Models' submission webhooks and their deliveries.

A `ModelWebhook` is the URL a model's owner registered (numerapi's `set_submission_webhook`,
or the site) with the `secret` its deliveries are signed with.

A `WebhookDelivery` is one trigger sent to that URL: when a round opens, or by hand
(`reason`). `trigger_id` is what the receiver gets and sends back with the upload it makes
(`submission`). `status` goes pending → delivered (a 2xx answer) or failed (no attempt left);
`attempts` counts the tries, `next_attempt_at` is when the next one is due, and a worker
claims a try by setting `lease_holder` and `lease_expires_at`. `response_code` and `error`
tell how the last try went.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from crowdquant.db.base import Base, HasId, enum_type

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model
    from crowdquant.db.models.submissions import Submission
    from crowdquant.db.models.tournaments import Round


class WebhookDeliveryStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class ModelWebhook(HasId, Base):
    __tablename__ = "model_webhooks"

    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), unique=True
    )
    url: Mapped[str] = mapped_column(String(2048))
    secret: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    model: Mapped[Model] = relationship()


class WebhookDelivery(HasId, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (CheckConstraint("attempts >= 0", name="attempts_not_negative"),)

    trigger_id: Mapped[str] = mapped_column(String(64), unique=True)
    model_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("models.id", ondelete="RESTRICT"), index=True
    )
    round_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), index=True
    )
    reason: Mapped[str] = mapped_column(String(32))
    url: Mapped[str] = mapped_column(String(2048))
    status: Mapped[WebhookDeliveryStatus] = mapped_column(
        enum_type(WebhookDeliveryStatus, "status"),
        default=WebhookDeliveryStatus.PENDING,
        index=True,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    lease_holder: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    response_code: Mapped[int | None]
    error: Mapped[str | None] = mapped_column(Text)
    submission_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("submissions.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]

    model: Mapped[Model] = relationship()
    round_: Mapped[Round | None] = relationship()
    submission: Mapped[Submission | None] = relationship()
