"""Typed dependencies of the REST routers: the request's session, the ledger, path and
paging values (signed links: `http.links.LinksDep`).

Aliases in the style of the FastAPI full-stack template: an endpoint asks for
``session: SessionDep`` or ``ledger: LedgerDep`` and gets the real thing, typed.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Depends, Path, Query
from pydantic import Field
from sqlalchemy.orm import Session

from crowdquant.api.rest.routing import request_session
from crowdquant.api.rest.schemas.base import MAX_INT32
from crowdquant.http.services import ServicesDep
from crowdquant.ledger import Ledger

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
