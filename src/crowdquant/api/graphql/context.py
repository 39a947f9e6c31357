"""What every resolver gets in `info.context`: one request's session, caller, URL builder and
the ledger.

The context authenticates lazily: public queries never look at the Authorization header,
authorized ones call `account(scope)`, which parses the numerapi header
(``Token PUBLIC_ID$SECRET_KEY``) and asks the accounts service.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

from graphql import GraphQLResolveInfo
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import Account, ApiScope
from crowdquant.http.signing import FILES_PATH, UrlSigner
from crowdquant.http.throttle import Throttle
from crowdquant.http.transaction_route import begin_writing
from crowdquant.ledger import Ledger
from crowdquant.storage import FileStorage
from crowdquant.tournament.accounts import (
    MalformedToken,
    authenticate_api_key,
    parse_token_header,
)
from crowdquant.tournament.submissions import LiveIdsCache
from crowdquant.tournament.validator import IN_PROCESS, Validator
from crowdquant.tournament.webhooks import WebhookTargets


class ApiError(ValueError):
    """A request the API layer itself refuses (missing argument, unsupported field)."""

    code: ClassVar[str] = "bad_request"

    def __init__(self, message: str) -> None:
        self.message = message
        super().__init__(message)


class NotSupported(ApiError):  # noqa: N818
    code = "not_supported"


@dataclass
class RequestContext:
    session: Session
    clock: Clock
    storage: FileStorage
    signer: UrlSigner
    base_url: str
    """The request's base URL without trailing slash, e.g. ``http://127.0.0.1:8000``."""
    authorization: str | None
    max_upload_bytes: int
    ledger: Ledger
    throttle: Throttle
    address: str | None
    """The client's address, for the rate limits."""
    validator: Validator = IN_PROCESS
    """Where uploads are validated (the server's validation pool)."""
    live_ids: LiveIdsCache = field(default_factory=LiveIdsCache)
    webhook_targets: WebhookTargets = field(default_factory=WebhookTargets.default)
    """Where webhooks may be sent."""
    writing: bool = True
    """Whether the request's transaction writes (holds the write lock); see `begin_writing`."""
    memo: dict[Any, Any] = field(default_factory=dict)
    """What one request's resolvers load once and share (e.g. a tournament's round results)."""
    _accounts: dict[ApiScope, Account] = field(default_factory=dict)

    def settle(self) -> None:
        """Commit what a reading request recorded so far (a key's last use), so that the slow
        part that follows (validating an upload) holds no lock; a writer keeps its one
        transaction."""
        if not self.writing:
            self.session.commit()

    def begin_writing(self) -> None:
        """Make the rest of the request a writer (`http.transaction_route.begin_writing`),
        if it is not one yet: for mutations that validate their upload first."""
        if not self.writing:
            begin_writing(self.session)
            self.writing = True

    def account(self, scope: ApiScope) -> Account:
        """The caller's account, if their API key has `scope`; raises an `AccountError`."""
        if scope not in self._accounts:
            if not self.authorization:
                raise MalformedToken(
                    "this query needs an API key: " + MalformedToken.default_message
                )
            public_id, secret = parse_token_header(self.authorization)
            self._accounts[scope] = authenticate_api_key(
                self.session, self.clock, public_id, secret, scope
            )
        return self._accounts[scope]

    def signed_url(
        self, method: str, key: str, expires_in: timedelta, *, max_bytes: int | None = None
    ) -> str:
        """An absolute URL to this app granting `method` on storage `key`."""
        path = FILES_PATH + key
        query = self.signer.sign(method, path, expires_in, max_bytes=max_bytes)
        return f"{self.base_url}{path}?{query}"


def context_of(info: GraphQLResolveInfo[Any]) -> RequestContext:
    context: Any = info.context
    if not isinstance(context, RequestContext):
        raise TypeError("resolvers run with a RequestContext")
    return context


def iso(moment: datetime | None) -> str | None:
    """UTC, whole seconds, with ``Z``: what numerapi and numerai-cli parse (protocol §3)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def required(value: Any, name: str) -> Any:
    """Arguments are nullable in the schema (protocol §4.5); required ones are checked here."""
    if value is None:
        raise ApiError(f"the argument {name!r} is required")
    return value
