"""Signing up, in and out.

Signing up takes the email's inbox: the form answers "check your inbox" whatever the
email, and the account is made when the mailed link is followed (`tournament.accounts`,
`request_sign_up`). The link carries the account to create, signed and expiring
(`Services.sign_up_tokens`); no row exists until then.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlparse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from crowdquant.http.services import base_url, client_address
from crowdquant.http.signing import TOKEN, UrlExpired, UrlForged
from crowdquant.http.throttle import Action
from crowdquant.mail import Mailer, MailError, Message
from crowdquant.tournament.accounts import (
    SIGN_UP_LINK_TTL,
    AccountError,
    EmailTaken,
    InvalidEmail,
    InvalidSignUpLink,
    InvalidUsername,
    SignUpClaim,
    UsernameTaken,
    WeakPassword,
    authenticate,
    end_web_session,
    finish_sign_up,
    request_sign_up,
    sign_up_mail,
    start_web_session,
)
from crowdquant.web.deps import PageSession, Services, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.forms import FormErrors, Text, checked_form
from crowdquant.web.guards import (
    SESSION_COOKIE,
    SESSION_TTL,
    Visitor,
    forget_sign_in,
    keep_signed_in,
)
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
logger = logging.getLogger(__name__)
FINISH_PATH = "/signup/finish"
"""Where a sign-up mail's link goes."""
FIELD_OF = {
    InvalidUsername: "username",
    UsernameTaken: "username",
    InvalidEmail: "email",
    WeakPassword: "password",
}


def safe_next(target: str | None) -> str:
    """Where to go after signing in: a path on this site only (never another site)."""
    if not target:
        return "/dashboard"
    parsed = urlparse(target)
    if parsed.scheme or parsed.netloc or not target.startswith("/") or target.startswith("//"):
        return "/dashboard"
    return target


@router.get("/login")
def login_page(request: Request, account: Visitor, next: str = "") -> Response:
    if account is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "account/login.html", {"errors": {}, "username": "", "next": next})


@router.post("/login", dependencies=[Depends(checked_form)])
def login(
    request: Request,
    session: PageSession,
    services: ServicesDep,
    username: Text = "",
    password: Text = "",
    next: Text = "",
) -> Response:
    address = client_address(request)
    services.throttle.hit(Action.SIGN_IN, address, username)
    services.throttle.check_sign_in(address, username)
    try:
        account = authenticate(session, username, password, hasher=services.hasher)
    except AccountError as error:
        session.rollback()
        services.throttle.sign_in_failed(address, username)
        errors: FormErrors = {"form": error.message}
        context = {"errors": errors, "username": username, "next": next}
        return render(request, "account/login.html", context, status=401)
    services.throttle.sign_in_succeeded(username)
    token = start_web_session(session, services.clock, account, SESSION_TTL)
    response = RedirectResponse(safe_next(next), status_code=303)
    keep_signed_in(response, token, services.settings)
    return response


@router.get("/signup")
def signup_page(request: Request, account: Visitor) -> Response:
    if account is not None:
        return RedirectResponse("/dashboard", status_code=303)
    return render(request, "account/signup.html", {"errors": {}, "username": "", "email": ""})


@router.post("/signup", dependencies=[Depends(checked_form)])
def signup(
    request: Request,
    session: PageSession,
    services: ServicesDep,
    username: Text = "",
    email: Text = "",
    password: Text = "",
) -> Response:
    """Always the same answer once the form is valid, whether or not the email has an
    account; the mail, sent after the answer, differs (see `request_sign_up`)."""
    services.throttle.hit(Action.SIGN_UP, client_address(request), email)
    try:
        asked = request_sign_up(session, username, email, password, hasher=services.hasher)
    except AccountError as error:
        session.rollback()
        errors: FormErrors = {FIELD_OF.get(type(error), "form"): error.message}
        context = {"errors": errors, "username": username, "email": email}
        return render(request, "account/signup.html", context, status=422)
    token = services.sign_up_tokens.make(asked.claim.fields(), SIGN_UP_LINK_TTL)
    site = base_url(request)
    mail = sign_up_mail(
        asked,
        finish_link=f"{site}{FINISH_PATH}?{urlencode({TOKEN: token})}",
        sign_in_link=f"{site}/login",
    )
    hours = int(SIGN_UP_LINK_TTL.total_seconds() // 3600)
    response = render(request, "account/signup_sent.html", {"hours": hours})
    response.background = BackgroundTask(_send_quietly, services.mailer, mail)
    return response


def _send_quietly(mailer: Mailer, mail: Message) -> None:
    """Send after the answer: a slow mail server delays no one, and the answer's timing
    cannot tell a taken email from a free one."""
    try:
        mailer.send(mail)
    except MailError as error:
        logger.error("a sign-up mail to %s was not sent: %s", mail.to, error)


def _claim_of(services: Services, token: str) -> SignUpClaim:
    try:
        return SignUpClaim.from_fields(services.sign_up_tokens.read(token))
    except UrlExpired:
        raise PageError(400, "This sign-up link has expired: sign up again.") from None
    except (UrlForged, InvalidSignUpLink):
        raise PageError(400, "This sign-up link is not valid: sign up again.") from None


@router.get(FINISH_PATH)
def finish_signup_page(request: Request, services: ServicesDep, token: str = "") -> Response:
    """What a sign-up mail links to: one button creates the account (a link alone does not,
    so mail scanners that open links create nothing)."""
    claim = _claim_of(services, token)
    context = {"username": claim.username, "email": claim.email, "token": token}
    return render(request, "account/signup_finish.html", context)


@router.post(FINISH_PATH, dependencies=[Depends(checked_form)])
def finish_signup(
    request: Request, session: PageSession, services: ServicesDep, token: Text = ""
) -> Response:
    claim = _claim_of(services, token)
    try:
        account = finish_sign_up(session, services.clock, claim)
    except UsernameTaken:
        raise PageError(
            409, "Someone took that username meanwhile: sign up again with another."
        ) from None
    except EmailTaken:
        raise PageError(409, "This email address has an account already: log in.") from None
    cookie = start_web_session(session, services.clock, account, SESSION_TTL)
    response = RedirectResponse("/dashboard", status_code=303)
    keep_signed_in(response, cookie, services.settings)
    return response


@router.post("/logout", dependencies=[Depends(checked_form)])
def logout(request: Request, session: PageSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end_web_session(session, token)
    response = RedirectResponse("/", status_code=303)
    forget_sign_in(response)
    return response
