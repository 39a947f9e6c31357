"""A model's submission webhook on the site.

`GET /models/{id}/webhook` shows the URL, the secret its deliveries are signed with and the
last deliveries; `POST /models/{id}/webhook` sets the URL (checked as
`tournament.webhooks` says, its host looked up before the request begins writing: a refused
one changes nothing and shows why next to the field),
`POST /models/{id}/webhook/clear` removes it, `POST /models/{id}/webhook/secret` makes a new
secret and `POST /models/{id}/webhook/trigger` sends a delivery now. Someone else's model is
the 404 page.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from crowdquant.db.models import Account, Model
from crowdquant.http.transaction_route import begin_writing, validates_first
from crowdquant.tournament.webhooks import (
    MAX_URL_LENGTH,
    WebhookRefused,
    latest_deliveries,
    new_secret_for,
    set_webhook,
    trigger_by_hand,
    webhook_of,
)
from crowdquant.web.deps import PageSession, ServicesDep
from crowdquant.web.forms import FormErrors, Text, checked_form
from crowdquant.web.guards import SignedIn
from crowdquant.web.models import own_model
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
NOTICES = {
    "set": "The webhook was saved.",
    "cleared": "The webhook was removed.",
    "secret": "A new signing secret was made: update your receiver.",
    "triggered": "A delivery was queued; it shows below once sent.",
}


def _page(
    request: Request,
    session: Session,
    model: Model,
    *,
    done: str = "",
    errors: FormErrors | None = None,
    typed: str | None = None,
    status: int = 200,
) -> Response:
    webhook = webhook_of(session, model)
    context: dict[str, Any] = {
        "model": model,
        "webhook": webhook,
        "deliveries": latest_deliveries(session, model),
        "max_url_length": MAX_URL_LENGTH,
        "errors": errors or {},
        "typed": typed if typed is not None else (webhook.url if webhook else ""),
        "notice": NOTICES.get(done),
    }
    return render(request, "participant/webhook.html", context, status=status)


def _done(model: Model, what: str) -> RedirectResponse:
    return RedirectResponse(f"/models/{model.id}/webhook?done={what}", status_code=303)


@router.get("/models/{model_id}/webhook")
def webhook_page(
    request: Request, model_id: str, account: SignedIn, session: PageSession, done: str = ""
) -> Response:
    return _page(request, session, own_model(session, account, model_id), done=done)


def _refused(
    request: Request, session: Session, account: Account, model_id: str, typed: str, message: str
) -> Response:
    session.rollback()
    model = own_model(session, account, model_id)
    return _page(request, session, model, errors={"url": message}, typed=typed, status=422)


@router.post("/models/{model_id}/webhook", dependencies=[Depends(checked_form)])
@validates_first
def set_url(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    url: Text = "",
) -> Response:
    model = own_model(session, account, model_id)
    if not url.strip():
        return _refused(request, session, account, model_id, url, "enter the webhook's URL")
    targets = services.webhook_targets.resolved_first(url)  # no lock held while it looks up
    begin_writing(session)
    try:
        set_webhook(session, services.clock, targets, account, model.id, url)
    except WebhookRefused as error:
        return _refused(request, session, account, model_id, url, error.message)
    return _done(model, "set")


@router.post("/models/{model_id}/webhook/clear", dependencies=[Depends(checked_form)])
def clear(
    request: Request, model_id: str, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    model = own_model(session, account, model_id)
    set_webhook(session, services.clock, services.webhook_targets, account, model.id, None)
    return _done(model, "cleared")


@router.post("/models/{model_id}/webhook/secret", dependencies=[Depends(checked_form)])
def new_secret(
    request: Request, model_id: str, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    model = own_model(session, account, model_id)
    try:
        new_secret_for(session, services.clock, account, model.id)
    except WebhookRefused as error:
        return _refused(request, session, account, model_id, "", error.message)
    return _done(model, "secret")


@router.post("/models/{model_id}/webhook/trigger", dependencies=[Depends(checked_form)])
def trigger(
    request: Request, model_id: str, account: SignedIn, session: PageSession, services: ServicesDep
) -> Response:
    model = own_model(session, account, model_id)
    try:
        trigger_by_hand(session, services.clock, account, model.id)
    except WebhookRefused as error:
        return _refused(request, session, account, model_id, "", error.message)
    return _done(model, "triggered")
