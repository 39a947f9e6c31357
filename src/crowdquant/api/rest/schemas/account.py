"""The caller's account and API keys."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from pydantic import field_validator

from crowdquant.api.rest.schemas.base import Input, Output, UtcDatetime
from crowdquant.db.models import ApiScope


class ApiKeyOut(Output):
    """A key as its owner sees it later: never its secret."""

    name: str
    public_id: str
    scopes: list[ApiScope]
    created_at: UtcDatetime
    last_used_at: UtcDatetime | None
    revoked_at: UtcDatetime | None

    @field_validator("scopes", mode="before")
    @classmethod
    def _sorted(cls, scopes: Iterable[str]) -> list[ApiScope]:
        return sorted(ApiScope(scope) for scope in scopes)


class AccountOut(Output):
    id: uuid.UUID
    username: str
    email: str
    created_at: UtcDatetime
    wallet_address: str | None
    """The EVM address the account stakes from on a chain-backed tournament."""


class WalletAddressIn(Input):
    address: str | None
    """An EVM address (0x and 40 hex digits; checksummed if mixed-case); null forgets it."""
