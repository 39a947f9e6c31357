"""What the app's routes depend on, built once by `server.app.create_app` and kept on
`app.state`."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.session import one_writer_at_a_time
from crowdquant.http.signing import SignedTokens, UrlSigner
from crowdquant.http.throttle import Throttle
from crowdquant.ledger import Ledger
from crowdquant.mail import Mailer
from crowdquant.settings import Settings
from crowdquant.storage import FileStorage
from crowdquant.tournament.runtime import NO_RUNTIME, TournamentRuntime
from crowdquant.tournament.submissions import LiveIdsCache
from crowdquant.tournament.validator import IN_PROCESS, Validator
from crowdquant.tournament.webhooks import WebhookTargets


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    sessions: sessionmaker[Session]
    storage: FileStorage
    signer: UrlSigner
    max_upload_bytes: int
    ledger: Ledger
    throttle: Throttle
    mailer: Mailer
    """Where sign-up links and notices are sent (`crowdquant.mail`)."""
    sign_up_tokens: SignedTokens
    hasher: PasswordHasher | None = None
    """Password hashing for sign-up and sign-in (None: the accounts service's default)."""
    runtimes: Mapping[int, TournamentRuntime] = field(default_factory=dict)
    """Per tournament number, what it runs on (for opening and scoring rounds by hand)."""
    validator: Validator = IN_PROCESS
    """Where uploads are decoded and validated: the server's `ValidationPool`."""
    webhook_targets: WebhookTargets = field(default_factory=WebhookTargets.default)
    """Where webhooks may be sent (`Settings.webhook_*_networks`)."""
    live_ids: LiveIdsCache = field(default_factory=LiveIdsCache, compare=False)
    """The indexed live ids of the rounds uploaded to lately."""
    writers: asyncio.Lock = field(default_factory=asyncio.Lock, compare=False)
    """Where this process's writing requests queue, in arrival order, on a database that
    takes one writer at a time (SQLite's own busy wait favours newcomers)."""

    def write_turn(self, writes: bool) -> AbstractAsyncContextManager[object]:
        """Held around a request's transactions: its turn among this process's writers when
        it `writes` to a one-writer database, else nothing to wait for."""
        if writes and one_writer_at_a_time(self.sessions):
            return self.writers
        return nullcontext()

    def runtime(self, number: int) -> TournamentRuntime:
        """What tournament `number` runs on (nothing, for one without a runtime)."""
        return self.runtimes.get(number, NO_RUNTIME)


def services(request: Request) -> Services:
    found = request.app.state.services
    if not isinstance(found, Services):
        raise TypeError("the app was not built by create_app")
    return found


async def app_services(request: Request) -> Services:
    """`services` as a dependency: async, so that it runs on the event loop rather than
    taking a worker thread (FastAPI runs a plain function's dependency in one)."""
    return services(request)


ServicesDep = Annotated[Services, Depends(app_services)]


def client_address(request: Request) -> str | None:
    """The address the request came from, as the socket saw it (None when unknown)."""
    return request.client.host if request.client is not None else None


def base_url(request: Request) -> str:
    """Where absolute signed URLs point (no trailing slash): the configured public URL, or
    the address the server is bound to; never the request's Host header, which the caller
    chooses."""
    configured = services(request).settings.public_url
    if configured is not None:
        return str(configured).rstrip("/")
    host, port = request.scope.get("server") or ("127.0.0.1", 80)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
