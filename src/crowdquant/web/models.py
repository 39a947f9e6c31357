"""A participant's models and their stakes.

- `GET /models`, `POST /models`, `POST /models/{id}/rename`: the models, entering a
  tournament with a new one, renaming one (`tournament.models`).
- `GET /models/{id}/stake`: the model's stake (`staking.stake_view`): staked now, pending
  release and when each release is due, what is at risk in which round, where rewards go,
  the recent stake requests; with the forms `POST /models/{id}/stake` (increase or
  decrease), `POST /models/{id}/payout-mode` and, for 2017-rules tournaments,
  `POST /models/{id}/round-stake` (amount and confidence on the open round).

Someone else's model (or no model) answers the 404 page. Every change goes through
`tournament.staking`; a refused form changes nothing and shows why next to its field.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import partial
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from crowdquant.db.models import Account, Model, PayoutMode, StakeChangeKind
from crowdquant.money import AmountError, Currency, parse_nmr_or_zero
from crowdquant.tournament.chain_records import transaction_hashes
from crowdquant.tournament.models import (
    InvalidModelName,
    ModelNameTaken,
    NotYourModel,
    UnknownModel,
    create_model,
    get_own_model,
    list_models,
    rename_model,
)
from crowdquant.tournament.rounds import current_round, is_open
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.staking import (
    InvalidStakeAmount,
    NotEnoughNmr,
    StakeError,
    change_stake,
    check_confidence,
    due_date,
    parse_nmr,
    set_payout_mode,
    stake_changes,
    stake_on_round,
    stake_view,
)
from crowdquant.tournament.tournaments import TournamentNotFound, list_tournaments
from crowdquant.tournament.wallet import wallet_balances
from crowdquant.web.deps import PageSession, Services, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.forms import FormErrors, Text, checked_form
from crowdquant.web.guards import SignedIn
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
RECENT_CHANGES = 20
MAX_NUMBER_DIGITS = 9  # a tournament number the database can hold
PLAIN_DECIMAL = re.compile(r"[0-9]{0,20}\.?[0-9]{1,20}")
"""A number as a person writes it: ASCII digits, no sign, exponent or underscore."""
NOTICES = {
    "created": "Your model is entered in the tournament.",
    "renamed": "The model was renamed.",
    "staked": "Your stake was changed.",
    "payout": "Where the model's rewards go was changed.",
    "round-stake": "Your stake on the round was set.",
}


def own_model(session: Session, account: Account, model_id: str) -> Model:
    """`account`'s model `model_id`; anyone else's, or none, is the 404 page."""
    try:
        return get_own_model(session, account, model_id)
    except (UnknownModel, NotYourModel):
        raise PageError(404, "You have no model with that id.") from None


def _done(path: str, what: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?done={what}", status_code=303)


# --- the models ----------------------------------------------------------------------------------


def _models_page(
    request: Request,
    session: Session,
    services: ServicesDep,
    account: Account,
    *,
    done: str = "",
    errors: FormErrors | None = None,
    typed: dict[str, str] | None = None,
    renaming: str = "",
    status: int = 200,
) -> Response:
    models = list_models(session, account)
    staked = {model.id: stake_view(session, services.ledger, model).staked for model in models}
    tournaments = list_tournaments(session)
    context: dict[str, Any] = {
        "models": models,
        "staked": staked,
        "tournaments": tournaments,
        "errors": errors or {},
        "typed": typed or {},
        "renaming": renaming,
        "notice": NOTICES.get(done),
    }
    return render(request, "participant/models.html", context, status=status)


@router.get("/models")
def models_page(
    request: Request,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    done: str = "",
) -> Response:
    return _models_page(request, session, services, account, done=done)


@router.post("/models", dependencies=[Depends(checked_form)])
def create(
    request: Request,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    tournament: Text = "",
    name: Text = "",
) -> Response:
    typed = {"tournament": tournament, "name": name}

    def refused(field: str, message: str, status: int) -> Response:
        session.rollback()
        errors: FormErrors = {field: message}
        return _models_page(
            request, session, services, account, errors=errors, typed=typed, status=status
        )

    number = tournament.strip()
    if not (number.isascii() and number.isdigit() and len(number) <= MAX_NUMBER_DIGITS):
        return refused("tournament", "choose a tournament", 422)
    try:
        create_model(session, services.clock, account, int(number), name)
    except TournamentNotFound as error:
        return refused("tournament", error.message, 422)
    except InvalidModelName as error:
        return refused("name", error.message, 422)
    except ModelNameTaken as error:
        return refused("name", error.message, 409)
    return _done("/models", "created")


@router.post("/models/{model_id}/rename", dependencies=[Depends(checked_form)])
def rename(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    name: Text = "",
) -> Response:
    model = own_model(session, account, model_id)
    try:
        rename_model(session, account, model.id, name)
    except (InvalidModelName, ModelNameTaken) as error:
        session.rollback()
        errors: FormErrors = {"name": error.message}
        status = 409 if isinstance(error, ModelNameTaken) else 422
        return _models_page(
            request,
            session,
            services,
            account,
            errors=errors,
            typed={"name": name},
            renaming=model_id,
            status=status,
        )
    return _done("/models", "renamed")


# --- a model's stake -----------------------------------------------------------------------------


def _stake_page(
    request: Request,
    session: Session,
    services: ServicesDep,
    account: Account,
    model: Model,
    *,
    done: str = "",
    form: str = "",
    errors: FormErrors | None = None,
    typed: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    view = stake_view(session, services.ledger, model)
    changes = stake_changes(session, model, RECENT_CHANGES)
    round_stakes = ruleset_of(model.tournament).round_stakes
    round_ = current_round(session, model.tournament)
    open_round = round_ if round_ is not None and is_open(round_, services.clock.now()) else None
    context: dict[str, Any] = {
        "model": model,
        "view": view,
        "releases": [(change, due_date(change)) for change in view.releases],
        "changes": [(change, due_date(change)) for change in changes],
        "transactions": transaction_hashes(session, (change.event_key for change in changes)),
        "wallet_nmr": wallet_balances(session, services.ledger, account)[Currency.NMR],
        "round_stakes": round_stakes,
        "open_round": open_round,
        "form": form,
        "errors": errors or {},
        "typed": typed or {},
        "notice": NOTICES.get(done),
    }
    return render(request, "participant/stake.html", context, status=status)


@router.get("/models/{model_id}/stake")
def stake_page(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    done: str = "",
) -> Response:
    model = own_model(session, account, model_id)
    return _stake_page(request, session, services, account, model, done=done)


def _stake_refusal(error: StakeError) -> tuple[str, int]:
    """The field a refused stake request's message goes next to, and the page's status."""
    if isinstance(error, InvalidStakeAmount):
        return "amount", 422
    if isinstance(error, NotEnoughNmr):
        return "amount", 409
    return "form", 409  # no open round, a tournament that stakes otherwise


def _refused(
    request: Request,
    session: Session,
    services: Services,
    account: Account,
    model: Model,
    form: str,
    typed: dict[str, str],
    field: str,
    message: str,
    status: int,
) -> Response:
    """The stake page again, with a refused form's error next to its field; nothing kept."""
    session.rollback()
    errors: FormErrors = {field: message}
    return _stake_page(
        request, session, services, account, model, form=form, errors=errors, typed=typed,
        status=status,
    )  # fmt: skip


@router.post("/models/{model_id}/stake", dependencies=[Depends(checked_form)])
def change_form(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    change: Text = "",
    amount: Text = "",
) -> Response:
    model = own_model(session, account, model_id)
    typed = {"change": change, "amount": amount}
    refused = partial(_refused, request, session, services, account, model, "stake", typed)

    try:
        kind = StakeChangeKind(change)
    except ValueError:
        return refused("change", "choose to increase or to decrease the stake", 422)
    try:
        units = parse_nmr(amount)
        change_stake(session, services.ledger, services.clock, model, kind, units)
    except StakeError as error:
        field, status = _stake_refusal(error)
        return refused(field, error.message, status)
    return _done(f"/models/{model.id}/stake", "staked")


@router.post("/models/{model_id}/payout-mode", dependencies=[Depends(checked_form)])
def payout_mode(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    mode: Text = "",
) -> Response:
    model = own_model(session, account, model_id)
    try:
        chosen = PayoutMode(mode)
    except ValueError:
        message = "choose where the model's rewards go"
        return _refused(
            request, session, services, account, model, "payout", {}, "mode", message, 422
        )
    set_payout_mode(session, model, chosen)
    return _done(f"/models/{model.id}/stake", "payout")


@router.post("/models/{model_id}/round-stake", dependencies=[Depends(checked_form)])
def round_stake(
    request: Request,
    model_id: str,
    account: SignedIn,
    session: PageSession,
    services: ServicesDep,
    amount: Text = "",
    confidence: Text = "",
) -> Response:
    model = own_model(session, account, model_id)
    typed = {"amount": amount, "confidence": confidence}
    refused = partial(_refused, request, session, services, account, model, "round", typed)

    try:
        units = parse_nmr_or_zero(amount)
    except AmountError as error:
        return refused("amount", str(error), 422)
    try:
        written = confidence.strip()
        if not PLAIN_DECIMAL.fullmatch(written):
            raise InvalidOperation(written)  # Decimal() takes "5e-1", "0.5_0" and other digits
        level = check_confidence(Decimal(written))
    except (InvalidOperation, InvalidStakeAmount):
        return refused(
            "confidence", "a confidence is a number in (0, 1] with at most 10 decimals", 422
        )
    try:
        stake_on_round(session, services.ledger, services.clock, model, units, level)
    except StakeError as error:
        field, status = _stake_refusal(error)
        return refused(field, error.message, status)
    return _done(f"/models/{model.id}/stake", "round-stake")
