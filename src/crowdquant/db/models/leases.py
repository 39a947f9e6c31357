"""Leases: which process holds a piece of background work (the round scheduler), until when.

A lease is held by `holder` until `expires_at` (wall time, not the tournament's clock) and
is taken and renewed by compare-and-set updates (`db.lease`); a NULL holder means free.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crowdquant.db.base import Base


class Lease(Base):
    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    holder: Mapped[str | None] = mapped_column(String(128))
    expires_at: Mapped[datetime]
