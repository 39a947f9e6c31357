"""Signing up, in and out."""

from __future__ import annotations

from urllib.parse import urlparse

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from crowdquant.http.services import client_address
from crowdquant.http.throttle import Action
from crowdquant.tournament.accounts import (
    AccountError,
    EmailTaken,
    InvalidEmail,
    InvalidUsername,
    UsernameTaken,
    WeakPassword,
    authenticate,
    end_web_session,
    sign_up,
    start_web_session,
)
from crowdquant.web.deps import PageSession, ServicesDep
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
FIELD_OF = {
    InvalidUsername: "username",
    UsernameTaken: "username",
    InvalidEmail: "email",
    EmailTaken: "email",
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
    services.throttle.hit(Action.SIGN_UP, client_address(request))
    try:
        account = sign_up(
            session, services.clock, username, email, password, hasher=services.hasher
        )
    except AccountError as error:
        session.rollback()
        errors: FormErrors = {FIELD_OF.get(type(error), "form"): error.message}
        context = {"errors": errors, "username": username, "email": email}
        return render(request, "account/signup.html", context, status=422)
    token = start_web_session(session, services.clock, account, SESSION_TTL)
    response = RedirectResponse("/dashboard", status_code=303)
    keep_signed_in(response, token, services.settings)
    return response


@router.post("/logout", dependencies=[Depends(checked_form)])
def logout(request: Request, session: PageSession) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        end_web_session(session, token)
    response = RedirectResponse("/", status_code=303)
    forget_sign_in(response)
    return response
