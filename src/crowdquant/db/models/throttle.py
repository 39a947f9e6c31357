"""Abuse limit counts shared by every web process (`http.throttle`).

`key` is the SHA-256 of what is counted (an action and a client address, account or
login), so neither addresses nor logins are stored. Rows that no longer count anything
are pruned.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from crowdquant.db.base import Base

KEY_LENGTH = 64


class RateLimitHits(Base):
    """The times (ISO 8601, oldest first) of one client's hits within an action's window;
    `expires_at`: when the newest leaves the window."""

    __tablename__ = "rate_limit_hits"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    hits: Mapped[list[str]]
    expires_at: Mapped[datetime] = mapped_column(index=True)


class SignInFailures(Base):
    """Failed sign-ins of one address or login, and until when it must wait."""

    __tablename__ = "sign_in_failures"

    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    failures: Mapped[int]
    blocked_until: Mapped[datetime | None]
    failed_at: Mapped[datetime] = mapped_column(index=True)
