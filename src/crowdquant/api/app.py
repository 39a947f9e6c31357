"""The HTTP app: numerapi's GraphQL endpoint at ``/`` (POST), the signed file URLs, the REST
API under ``/api/v1`` (its OpenAPI document at ``/api/openapi.json``, see `api/rest/`), and
the web pages with their static files (`crowdquant.web`).

``create_app`` takes everything it needs (settings, clock, session factory, storage, ledger);
nothing is global, so tests and the server build as many apps as they like. The ledger
defaults to the books in the application's database (`SqlLedger`).

GraphQL answers are always HTTP 200 (protocol §2.4): a malformed body, a refusal by a
service or by the ledger, or an unexpected failure all come back as
``{"errors": [{"message": ...}]}``. Each request runs in one transaction, committed unless a
resolver failed unexpectedly (a refusal changes nothing, and an upload that fails
validation is recorded on purpose).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool

from crowdquant import web
from crowdquant.api import files, rest
from crowdquant.api.deps import Services, ServicesDep, base_url
from crowdquant.api.graphql import execute
from crowdquant.api.graphql.context import RequestContext
from crowdquant.api.signing import signer_from_settings
from crowdquant.clock import Clock
from crowdquant.db.session import BUSY_RETRIES, is_busy
from crowdquant.ledger import Ledger
from crowdquant.ledger.sql import SqlLedger
from crowdquant.scoring.validation import DEFAULT_MAX_BYTES
from crowdquant.settings import Settings
from crowdquant.storage import FileStorage
from crowdquant.tournament.rounds import LivePublisher
from crowdquant.tournament.scoring import TargetSource


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    sessions: sessionmaker[Session],
    storage: FileStorage,
    max_upload_bytes: int = DEFAULT_MAX_BYTES,
    ledger: Ledger | None = None,
    hasher: PasswordHasher | None = None,
    targets_by_tournament: Mapping[int, TargetSource] | None = None,
    publishers_by_tournament: Mapping[int, LivePublisher] | None = None,
) -> FastAPI:
    app = FastAPI(title="crowdquant", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = Services(
        settings=settings,
        clock=clock,
        sessions=sessions,
        storage=storage,
        signer=signer_from_settings(settings, clock),
        max_upload_bytes=max_upload_bytes,
        ledger=SqlLedger(clock) if ledger is None else ledger,
        hasher=hasher,
        targets=dict(targets_by_tournament or {}),
        publishers=dict(publishers_by_tournament or {}),
    )
    app.include_router(files.router)
    app.include_router(web.router)
    app.mount(web.STATIC_PATH, StaticFiles(directory=web.STATIC_DIR), name="static")
    app.include_router(rest.router, prefix=rest.PREFIX)
    app.add_api_route(rest.OPENAPI_PATH, rest.openapi_endpoint, include_in_schema=False)
    app.add_api_route("/", graphql_endpoint, methods=["POST"])
    return app


def _errors(message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]})


def _run(services: Services, data: Any, url: str, authorization: str | None) -> dict[str, Any]:
    """One GraphQL request in one transaction; run again in a new one, a few times, while
    SQLite reports the database busy (`db.session.is_busy`)."""
    for attempt in range(1, BUSY_RETRIES + 1):
        last_try = attempt == BUSY_RETRIES
        with services.sessions() as session:
            context = RequestContext(
                session=session,
                clock=services.clock,
                storage=services.storage,
                signer=services.signer,
                base_url=url,
                authorization=authorization,
                max_upload_bytes=services.max_upload_bytes,
                ledger=services.ledger,
            )
            outcome = execute(data, context, last_try=last_try)
            if outcome.unexpected:
                session.rollback()
                if outcome.busy and not last_try:
                    continue
                return outcome.body
            try:
                session.commit()
            except Exception as error:
                if not is_busy(error) or last_try:
                    raise
                continue
            return outcome.body
    raise AssertionError("unreachable: the last attempt returns")


async def graphql_endpoint(request: Request, services: ServicesDep) -> JSONResponse:
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
        return _errors("the request body is not JSON")
    if not isinstance(data, dict):
        return _errors('expected a JSON object {"query": ..., "variables": ...}')
    authorization = request.headers.get("authorization")
    body = await run_in_threadpool(_run, services, data, base_url(request), authorization)
    return JSONResponse(body)
