"""Who can sign in and how: accounts, API keys (numerapi's `public_id$secret`), web sessions.

Secrets are never stored, only their hashes. Keys and sessions belong wholly to their account
and go with it (ON DELETE CASCADE); an account that owns models cannot be deleted (see
`models.Model`), because its submissions, scores and payouts are history.
Usernames and emails are unique as stored: the account service stores them normalised
(lower-case) so that the database's uniqueness is the case-insensitive one users expect.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from crowdquant.db.base import Base, HasId
from crowdquant.db.enums import ApiScope as ApiScope

if TYPE_CHECKING:
    from crowdquant.db.models.models import Model


class Account(HasId, Base):
    __tablename__ = "accounts"

    username: Mapped[str] = mapped_column(String(64), unique=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime]
    is_operator: Mapped[bool] = mapped_column(default=False)
    """May use the operator's pages (set with `crowdquant account create --operator`)."""
    wallet_address: Mapped[str | None] = mapped_column(String(42), unique=True)
    """The EVM address the account stakes from on a chain-backed tournament (checksummed)."""

    api_keys: Mapped[list[ApiKey]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )
    web_sessions: Mapped[list[WebSession]] = relationship(
        back_populates="account", cascade="all, delete-orphan", passive_deletes=True
    )
    models: Mapped[list[Model]] = relationship(back_populates="account", passive_deletes="all")


class ApiKey(HasId, Base):
    """A key pair: `public_id` is shown to its owner and sent in clear, the secret only hashed.

    `scopes` is a JSON list of `ApiScope` values; assign a new list to change it (in-place
    edits of the list are not tracked).
    """

    __tablename__ = "api_keys"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64), default="")
    public_id: Mapped[str] = mapped_column(String(64), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(255))
    scopes: Mapped[list[str]]
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    last_used_at: Mapped[datetime | None]

    account: Mapped[Account] = relationship(back_populates="api_keys")

    @validates("scopes")
    def _known_scopes(self, _key: str, scopes: list[str]) -> list[str]:
        return sorted({ApiScope(scope).value for scope in scopes})


class WebSession(HasId, Base):
    """A signed-in browser: the cookie carries a token, the table its hash."""

    __tablename__ = "web_sessions"

    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(128), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)

    account: Mapped[Account] = relationship(back_populates="web_sessions")
