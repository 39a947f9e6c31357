"""The OpenAPI document of the REST API: its routes only (not GraphQL, not the file URLs).

Served as JSON; there is no Swagger UI, which would load its assets from a CDN.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.openapi.utils import get_openapi

TITLE = "crowdquant REST API"
VERSION = "1"
DESCRIPTION = (
    "Tournaments, rounds, datasets, the caller's account, models, submissions, stakes and"
    " wallet, and rounds' results."
    " Authenticated routes take the header `Authorization: Token PUBLIC_ID$SECRET_KEY`."
    ' Every refusal answers `{"detail": {"code": ..., "message": ...}}`.'
)


def document(router: APIRouter, prefix: str) -> dict[str, Any]:
    """The document of `router`'s routes as served under `prefix`."""
    served = APIRouter()
    served.include_router(router, prefix=prefix)
    return get_openapi(title=TITLE, version=VERSION, description=DESCRIPTION, routes=served.routes)
