"""The REST API for our own pages and scripts, beside numerapi's GraphQL.

`create_app` includes `router` under `PREFIX` and serves `openapi_endpoint` at
`OPENAPI_PATH`. One router per domain; every route runs on `routing.RestRoute` (one
transaction per request, refusals as ``{"detail": {"code", "message"}}``, see `errors`).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from crowdquant.api.rest import (
    account,
    datasets,
    diagnostics,
    models,
    openapi,
    scores,
    stakes,
    submissions,
    tournaments,
)
from crowdquant.api.rest.errors import RestError
from crowdquant.api.rest.routing import RestRoute

PREFIX = "/api/v1"
OPENAPI_PATH = "/api/openapi.json"
DOMAINS = (tournaments, datasets, scores, account, models, submissions, diagnostics, stakes)
ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def operation_id(route: APIRoute) -> str:
    """The endpoint's function name: `get_rounds`, `post_submission`."""
    return route.name


router = APIRouter(route_class=RestRoute, generate_unique_id_function=operation_id)
for domain in DOMAINS:
    router.include_router(domain.router)


def api_routes() -> list[APIRoute]:
    """Every REST route, with its path below `PREFIX`."""
    return [
        route for domain in DOMAINS for route in domain.router.routes if isinstance(route, APIRoute)
    ]


@router.api_route("/{path:path}", methods=ANY_METHOD, include_in_schema=False)
def no_such_endpoint(path: str, request: Request) -> None:
    """The last route under the prefix: unknown paths and methods answer in the API's shape."""
    allowed = sorted(
        method
        for route in api_routes()
        if route.path_regex.fullmatch("/" + path)
        for method in route.methods or ()
    )
    if allowed:
        raise RestError(
            405,
            "method_not_allowed",
            f"{request.method} is not allowed here; use {', '.join(allowed)}",
            {"Allow": ", ".join(allowed)},
        )
    raise RestError(404, "not_found", f"there is no endpoint {PREFIX}/{path}")


@cache
def openapi_document() -> dict[str, Any]:
    """Built on the first request, then kept: the routes never change."""
    return openapi.document(router, PREFIX)


async def openapi_endpoint() -> JSONResponse:
    return JSONResponse(openapi_document())


__all__ = ["OPENAPI_PATH", "PREFIX", "api_routes", "openapi_endpoint", "router"]
