"""The route class of every page: one transaction per request, errors as pages.

`PageRoute` is a `TransactionRoute` (`http.transaction_route`): it opens the request's
session before the dependencies run (`deps.PageSession` hands it out), commits it once the
page is rendered and before it is sent, and rolls it back when anything fails. A handler
that shows a refused form calls `session.rollback()` itself and renders the form again
with the error next to its field. `SignInRequired` becomes a
redirect to the sign-in page; `PageError` and unexpected failures become an error page.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException

from crowdquant.http.throttle import TooManyRequests
from crowdquant.http.transaction_route import TransactionRoute
from crowdquant.http.validation import describe_validation
from crowdquant.ledger import LedgerError
from crowdquant.tournament.errors import ServiceError
from crowdquant.web.deps import SESSION_STATE
from crowdquant.web.errors import PageError, SignInRequired
from crowdquant.web.templating import render_error

logger = logging.getLogger(__name__)


def _error_page(request: Request, error: Exception) -> Response:
    if isinstance(error, SignInRequired):
        wanted = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(wanted)}", status_code=303)
    if isinstance(error, TooManyRequests):
        response = render_error(request, 429, error.message)
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if isinstance(error, PageError):
        return render_error(request, error.status, error.message)
    if isinstance(error, RequestValidationError):
        in_path = any(problem.get("loc", ("",))[0] == "path" for problem in error.errors())
        if in_path:
            return render_error(request, 404, "There is no such page.")
        return render_error(request, 422, f"The request is not valid: {describe_validation(error)}")
    if isinstance(error, HTTPException):
        return render_error(request, error.status_code, str(error.detail))
    if isinstance(error, ServiceError | LedgerError):
        status = 404 if isinstance(error, LookupError) else 409
        return render_error(request, status, error.message)
    logger.error("page failed", exc_info=error)
    return render_error(request, 500, "Something went wrong on our side.")


class PageRoute(TransactionRoute):
    session_state = SESSION_STATE
    failure = _error_page
