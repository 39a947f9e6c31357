"""Who may see which page: every access rule of the web pages, in one place.

A browser signs in with a session cookie (`SESSION_COOKIE`: a random token, only its hash
is stored, see `tournament.accounts.start_web_session`); HttpOnly, SameSite=Lax, and
Secure outside local mode. Pages ask for:

- `Visitor`: the signed-in account or None (public pages; every page runs it, so the
  header knows who is there);
- `SignedIn`: an account, or a redirect to the sign-in page (a participant's own pages);
- `OperatorAccount`: an account marked operator, or 403 (the operator's pages).

What a participant may read of scores is still decided by `tournament.visibility`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response

from crowdquant.db.models import Account
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import AccountError, account_for_web_session
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError, SignInRequired
from crowdquant.web.templating import VIEWER_STATE

SESSION_COOKIE = "crowdquant_session"
SESSION_TTL = timedelta(days=14)


def visitor(request: Request, session: PageSession, services: ServicesDep) -> Account | None:
    token = request.cookies.get(SESSION_COOKIE)
    account = None
    if token:
        try:
            account = account_for_web_session(session, services.clock, token)
        except AccountError:
            account = None  # ended or expired: a visitor again
    setattr(request.state, VIEWER_STATE, account)
    return account


Visitor = Annotated[Account | None, Depends(visitor)]


def signed_in(account: Visitor) -> Account:
    if account is None:
        raise SignInRequired()
    return account


SignedIn = Annotated[Account, Depends(signed_in)]


def operator(account: SignedIn) -> Account:
    if not account.is_operator:
        raise PageError(403, "These pages are the operator's.")
    return account


OperatorAccount = Annotated[Account, Depends(operator)]


def keep_signed_in(response: Response, token: str, settings: Settings) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(SESSION_TTL.total_seconds()),
        httponly=True,
        samesite="lax",
        secure=settings.mode != "local",
        path="/",
    )


def forget_sign_in(response: Response) -> None:
    response.delete_cookie(SESSION_COOKIE, path="/")
