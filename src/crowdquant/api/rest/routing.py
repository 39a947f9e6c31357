"""The route class of every REST endpoint: one transaction per request, refusals as JSON.

`RestRoute` opens the request's session before the dependencies run (`deps.SessionDep`
hands it out), commits it once the endpoint has answered and before the answer is sent,
and rolls it back when anything fails, so a refused request changes nothing. Errors become
`errors.refusal` answers here, inside the transaction, rather than in app-wide exception
handlers (which run only after FastAPI's dependency cleanup, and would also see the other
interfaces' errors).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from crowdquant.api.deps import services
from crowdquant.api.rest.errors import RestError, code_for_status, refusal, status_for
from crowdquant.ledger import LedgerError
from crowdquant.tournament.errors import ServiceError

SESSION_STATE = "rest_session"
MAX_REPORTED_PROBLEMS = 10

logger = logging.getLogger(__name__)


def describe_validation(error: RequestValidationError) -> str:
    """``body.name: Field required; path.number: ...``: where and what, without the input."""
    problems = []
    for problem in error.errors()[:MAX_REPORTED_PROBLEMS]:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        problems.append(f"{where}: {problem.get('msg', 'invalid')}")
    return "; ".join(problems) or "the request is not valid"


def to_refusal(error: Exception) -> Response:
    if isinstance(error, ServiceError | LedgerError):
        return refusal(status_for(error), error.code, error.message)
    if isinstance(error, RestError):
        return refusal(error.status, error.code, error.message, error.headers)
    if isinstance(error, RequestValidationError):
        return refusal(422, "invalid_request", describe_validation(error))
    if isinstance(error, HTTPException):
        headers = dict(error.headers) if error.headers else None
        code = code_for_status(error.status_code)
        return refusal(error.status_code, code, str(error.detail), headers)
    logger.error("REST endpoint failed", exc_info=error)
    return refusal(500, "internal_error", "internal error")


class RestRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def handle(request: Request) -> Response:
            session = services(request).sessions()
            setattr(request.state, SESSION_STATE, session)
            try:
                response = await handler(request)
                await run_in_threadpool(session.commit)
            except Exception as error:
                await run_in_threadpool(session.rollback)
                return to_refusal(error)
            finally:
                await run_in_threadpool(session.close)
            return response

        return handle


def request_session(request: Request) -> Session:
    session = getattr(request.state, SESSION_STATE, None)
    if not isinstance(session, Session):
        raise TypeError("REST endpoints run on RestRoute, which opens their session")
    return session
