"""What the app's routes depend on, built once by `create_app` and kept on `app.state`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated

from argon2 import PasswordHasher
from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.api.signing import UrlSigner
from crowdquant.clock import Clock
from crowdquant.ledger import Ledger
from crowdquant.settings import Settings
from crowdquant.storage import FileStorage
from crowdquant.tournament.rounds import LivePublisher
from crowdquant.tournament.scoring import TargetSource


@dataclass(frozen=True)
class Services:
    settings: Settings
    clock: Clock
    sessions: sessionmaker[Session]
    storage: FileStorage
    signer: UrlSigner
    max_upload_bytes: int
    ledger: Ledger
    hasher: PasswordHasher | None = None
    """Password hashing for sign-up and sign-in (None: the accounts service's default)."""
    targets: Mapping[int, TargetSource] = field(default_factory=dict)
    """Per tournament number, where its rounds' targets come from (for scoring by hand)."""
    publishers: Mapping[int, LivePublisher] = field(default_factory=dict)
    """Per tournament number, the publisher of its live eras (for opening rounds by hand)."""


def services(request: Request) -> Services:
    found = request.app.state.services
    if not isinstance(found, Services):
        raise TypeError("the app was not built by create_app")
    return found


ServicesDep = Annotated[Services, Depends(services)]


def base_url(request: Request) -> str:
    """The URL this request reached the app at, for absolute signed URLs (no trailing slash)."""
    return str(request.base_url).rstrip("/")
