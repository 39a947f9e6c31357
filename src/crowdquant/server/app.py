"""The HTTP app: numerapi's GraphQL endpoint at ``/`` (POST), the signed file URLs, the REST
API under ``/api/v1`` (its OpenAPI document at ``/api/openapi.json``, see `api/rest/`), and
the web pages with their static files (`crowdquant.web`).

Every request body is capped before it is read (`http.body_limit`: the request cap from
the settings, the upload cap for uploads).

``create_app`` takes everything it needs (settings, clock, session factory, storage, ledger,
the validator of uploads: the server passes its `ValidationPool`); nothing is global, so
tests and the server build as many apps as they like. The ledger and the mailer default
to the backends the settings choose (`ledger_from_settings`, `mailer_from_settings`,
which refuses incomplete mail settings before anything is served), the abuse limits to
counts in this process's memory (`http.throttle`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from argon2 import PasswordHasher
from fastapi import FastAPI, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.orm import Session, sessionmaker

from crowdquant import web
from crowdquant.api import files, rest
from crowdquant.api.graphql.endpoint import graphql_endpoint
from crowdquant.api.rest.errors import refusal
from crowdquant.clock import Clock
from crowdquant.http.body_limit import BodyLimit, refuse_as_json
from crowdquant.http.services import Services
from crowdquant.http.signing import sign_up_tokens_from_settings, signer_from_settings
from crowdquant.http.throttle import Throttle
from crowdquant.ledger import Ledger, ledger_from_settings
from crowdquant.mail import Mailer, mailer_from_settings
from crowdquant.scoring.validation import DEFAULT_MAX_BYTES
from crowdquant.server.headers import SecurityHeaders
from crowdquant.settings import Settings
from crowdquant.storage import FileStorage
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.validator import IN_PROCESS, Validator
from crowdquant.tournament.webhooks import WebhookTargets

GRAPHQL_PATH = "/"
UPLOAD_PATHS = re.compile(
    rf"{rest.PREFIX}/models/[^/]+/(submissions|diagnostics)|/submit|/models/[^/]+/compute/upload"
)
"""The paths that take multipart uploads: the REST API's and the upload pages."""


def _body_too_large(path: str, upload: bool, message: str) -> Response:
    """A body over its cap, refused in the shape of the interface its path belongs to."""
    if path.startswith(f"{rest.PREFIX}/"):
        return refusal(413, "upload_too_large" if upload else "request_too_large", message)
    if path == GRAPHQL_PATH:
        return JSONResponse({"errors": [{"message": message}]}, status_code=413)
    return refuse_as_json(path, upload, message)


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    sessions: sessionmaker[Session],
    storage: FileStorage,
    max_upload_bytes: int = DEFAULT_MAX_BYTES,
    ledger: Ledger | None = None,
    hasher: PasswordHasher | None = None,
    mailer: Mailer | None = None,
    runtimes: Mapping[int, TournamentRuntime] | None = None,
    throttle: Throttle | None = None,
    validator: Validator = IN_PROCESS,
) -> FastAPI:
    app = FastAPI(title="crowdquant", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.services = Services(
        settings=settings,
        clock=clock,
        sessions=sessions,
        storage=storage,
        signer=signer_from_settings(settings, clock),
        max_upload_bytes=max_upload_bytes,
        ledger=ledger_from_settings(settings, clock) if ledger is None else ledger,
        throttle=throttle or Throttle.from_settings(settings, clock),
        mailer=mailer_from_settings(settings) if mailer is None else mailer,
        sign_up_tokens=sign_up_tokens_from_settings(settings, clock),
        hasher=hasher,
        runtimes=dict(runtimes or {}),
        validator=validator,
        webhook_targets=WebhookTargets.from_settings(settings),
    )
    # numerapi's endpoint first (most requests are its), then the REST API, so that neither
    # tries every page's route first. The order changes no answer: no page takes a POST to
    # `/` (a method neither takes is refused 405 either way), and no page or file path is
    # under the REST API's prefix.
    app.add_api_route(GRAPHQL_PATH, graphql_endpoint, methods=["POST"])
    app.include_router(rest.router, prefix=rest.PREFIX)
    app.include_router(files.router)
    app.include_router(web.router)
    app.mount(web.STATIC_PATH, StaticFiles(directory=web.STATIC_DIR), name="static")
    app.add_api_route(rest.OPENAPI_PATH, rest.openapi_endpoint, include_in_schema=False)
    app.add_middleware(
        BodyLimit,
        max_body_bytes=settings.max_request_bytes,
        max_upload_bytes=max_upload_bytes,
        upload_paths=UPLOAD_PATHS,
        refuse=_body_too_large,
    )
    app.add_middleware(SecurityHeaders)
    return app
