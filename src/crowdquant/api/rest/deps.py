"""Typed dependencies of the REST routers: the request's session, the ledger, signed links,
path and paging values.

Aliases in the style of the FastAPI full-stack template: an endpoint asks for
``session: SessionDep``, ``ledger: LedgerDep`` or ``links: LinksDep`` and gets the real
thing, typed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import parse_qs

from fastapi import Depends, Path, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session

from crowdquant.api.deps import ServicesDep, base_url
from crowdquant.api.rest.errors import RestError
from crowdquant.api.rest.routing import request_session
from crowdquant.api.rest.schemas.base import MAX_INT32
from crowdquant.api.signing import DOWNLOAD_TTL, EXPIRES, FILES_PATH, UrlSigner
from crowdquant.ledger import Ledger
from crowdquant.tournament.visibility import servable_key

SessionDep = Annotated[Session, Depends(request_session)]


def app_ledger(services: ServicesDep) -> Ledger:
    return services.ledger


LedgerDep = Annotated[Ledger, Depends(app_ledger)]

Limit = Annotated[int, Query(ge=1, le=10_000, description="At most this many items.")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="Skip this many items first.")]

TournamentNumber = Annotated[
    int, Path(ge=1, le=MAX_INT32, description="The tournament's number, e.g. 8.")
]
RoundRef = Annotated[
    Annotated[int, Field(ge=0, le=MAX_INT32)] | Literal["current"],
    Path(description="A round number, or `current` (or 0) for the tournament's newest round."),
]


@dataclass(frozen=True)
class SignedLink:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class Links:
    """Absolute signed URLs to this app's file endpoint, as the GraphQL `dataset` field gives."""

    signer: UrlSigner
    base_url: str

    def download(self, storage_key: str, expires_in: timedelta = DOWNLOAD_TTL) -> SignedLink:
        if not servable_key(storage_key):  # the file endpoint would refuse it anyway
            raise RestError(404, "not_found", "this file is not served")
        path = FILES_PATH + storage_key
        query = self.signer.sign("GET", path, expires_in)
        expires = int(parse_qs(query)[EXPIRES][0])
        return SignedLink(f"{self.base_url}{path}?{query}", datetime.fromtimestamp(expires, UTC))


def links(request: Request, services: ServicesDep) -> Links:
    return Links(services.signer, base_url(request))


LinksDep = Annotated[Links, Depends(links)]
