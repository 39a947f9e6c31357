"""The route class of every REST endpoint: one transaction per request, refusals as JSON.

`RestRoute` is a `TransactionRoute` (one transaction per request, committed before the
answer is sent, rolled back on any failure: a refused request changes nothing; `deps.
SessionDep` hands the session out) whose failures become `errors.refusal` answers.
"""

from __future__ import annotations

import logging

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session
from starlette.exceptions import HTTPException

from crowdquant.api.rest.errors import RestError, code_for_status, refusal, status_for
from crowdquant.http.throttle import TooManyRequests
from crowdquant.http.transaction_route import TransactionRoute
from crowdquant.http.transaction_route import request_session as transaction_session
from crowdquant.http.validation import describe_validation
from crowdquant.ledger import LedgerError
from crowdquant.tournament.errors import ServiceError

SESSION_STATE = "rest_session"

logger = logging.getLogger(__name__)


def to_refusal(error: Exception) -> Response:
    if isinstance(error, ServiceError | LedgerError):
        return refusal(status_for(error), error.code, error.message)
    if isinstance(error, TooManyRequests):
        return refusal(429, error.code, error.message, {"Retry-After": str(error.retry_after)})
    if isinstance(error, RestError):
        return refusal(error.status, error.code, error.message, error.headers)
    if isinstance(error, RequestValidationError):
        return refusal(422, "invalid_request", describe_validation(error))
    if isinstance(error, HTTPException) and error.status_code == 400:
        # FastAPI's answer to a body it cannot decode at all: bad input as well
        message = "body: the request body is not UTF-8 JSON, or is nested too deeply"
        return refusal(422, "invalid_request", message)
    if isinstance(error, HTTPException):
        headers = dict(error.headers) if error.headers else None
        code = code_for_status(error.status_code)
        return refusal(error.status_code, code, str(error.detail), headers)
    logger.error("REST endpoint failed", exc_info=error)
    return refusal(500, "internal_error", "internal error")


def _refused(request: Request, error: Exception) -> Response:
    del request
    return to_refusal(error)


class RestRoute(TransactionRoute):
    session_state = SESSION_STATE
    failure = _refused


async def request_session(request: Request) -> Session:
    """The request's session (async: handed out on the event loop, no worker thread)."""
    return transaction_session(request, SESSION_STATE)
