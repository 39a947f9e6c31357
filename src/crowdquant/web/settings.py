"""A participant's settings: API keys and password.

- `GET /settings`: the API keys (scopes, created, last used, revoked) and the forms.
- `POST /settings/keys`: a new key with a name and scopes; its secret is shown on the answer
  page only, once (the page is not cached), and never again.
- `POST /settings/keys/{public_id}/revoke`: revoke one of one's keys for good.
- `POST /settings/password`: change the password; this ends every web session of the
  account (`change_password`), so this browser is signed in again with a new session.
- `POST /settings/wallet-address`: register the EVM address the account stakes from
  (checksummed), or forget it with an empty one.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from crowdquant.db.models import Account
from crowdquant.http.services import client_address
from crowdquant.http.throttle import Action
from crowdquant.tournament.accounts import (
    InvalidCredentials,
    InvalidKeyName,
    InvalidScopes,
    InvalidWalletAddress,
    NewApiKey,
    Scope,
    UnknownApiKey,
    WalletAddressTaken,
    WeakPassword,
    change_password,
    create_api_key,
    list_api_keys,
    revoke_api_key,
    set_wallet_address,
    start_web_session,
)
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.forms import FormErrors, Text, checked_form
from crowdquant.web.guards import SESSION_TTL, SignedIn, keep_signed_in
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
NOTICES = {
    "revoked": "The key was revoked: it no longer works.",
    "password": "Your password was changed; every other browser was signed out.",
    "wallet": "Your wallet address was saved.",
}


def _settings_page(
    request: Request,
    session: Session,
    account: Account,
    *,
    done: str = "",
    form: str = "",
    errors: FormErrors | None = None,
    typed: dict[str, Any] | None = None,
    new_key: NewApiKey | None = None,
    status: int = 200,
) -> Response:
    context: dict[str, Any] = {
        "keys": list_api_keys(session, account),
        "scopes": list(Scope),
        "form": form,
        "errors": errors or {},
        "typed": typed or {},
        "new_key": new_key,
        "notice": NOTICES.get(done),
        "wallet_address": account.wallet_address,
    }
    response = render(request, "participant/settings.html", context, status=status)
    if new_key is not None:
        response.headers["Cache-Control"] = "no-store"  # the secret is on this page only
    return response


@router.get("/settings")
def settings_page(
    request: Request, account: SignedIn, session: PageSession, done: str = ""
) -> Response:
    return _settings_page(request, session, account, done=done)


@router.post("/settings/keys", dependencies=[Depends(checked_form)])
def new_key(
    request: Request,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    name: Text = "",
    scopes: Annotated[list[str] | None, Form()] = None,
) -> Response:
    services.throttle.hit(Action.API_KEY, client_address(request), account.id)
    chosen = scopes or []
    try:
        made = create_api_key(session, services.clock, account, name, chosen)
    except (InvalidKeyName, InvalidScopes) as error:
        session.rollback()
        field = "name" if isinstance(error, InvalidKeyName) else "scopes"
        errors: FormErrors = {field: error.message}
        typed = {"name": name, "scopes": chosen}
        return _settings_page(
            request, session, account, form="key", errors=errors, typed=typed, status=422
        )
    return _settings_page(request, session, account, new_key=made)


@router.post("/settings/keys/{public_id}/revoke", dependencies=[Depends(checked_form)])
def revoke_key(
    public_id: str, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    try:
        revoke_api_key(session, services.clock, account, public_id)
    except UnknownApiKey:
        raise PageError(404, "You have no API key with that id.") from None
    return RedirectResponse("/settings?done=revoked", status_code=303)


@router.post("/settings/password", dependencies=[Depends(checked_form)])
def password_change(
    request: Request,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    current_password: Text = "",
    new_password: Text = "",
) -> Response:
    try:
        change_password(session, account, current_password, new_password, hasher=services.hasher)
    except (InvalidCredentials, WeakPassword) as error:
        session.rollback()
        field = "current_password" if isinstance(error, InvalidCredentials) else "new_password"
        errors: FormErrors = {field: error.message}
        return _settings_page(request, session, account, form="password", errors=errors, status=422)
    token = start_web_session(session, services.clock, account, SESSION_TTL)
    response = RedirectResponse("/settings?done=password", status_code=303)
    keep_signed_in(response, token, services.settings)
    return response


@router.post("/settings/wallet-address", dependencies=[Depends(checked_form)])
def wallet_address_change(
    request: Request, account: SignedIn, session: PageSession, address: Text = ""
) -> Response:
    try:
        set_wallet_address(session, account, address.strip() or None)
    except (InvalidWalletAddress, WalletAddressTaken) as error:
        session.rollback()
        errors: FormErrors = {"address": error.message}
        typed = {"address": address}
        return _settings_page(
            request, session, account, form="wallet", errors=errors, typed=typed, status=422
        )
    return RedirectResponse("/settings?done=wallet", status_code=303)
