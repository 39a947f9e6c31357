"""The operator's pages: tournaments and the books, a tournament's settings and rounds, and
its meta model's performance. Every page and form is behind `OperatorAccount`.

- `/operator`: every tournament, and the ledger audited (`Ledger.verify`): whether the books
  are sound, their totals (NMR minted, burned, in circulation; USD funded) and the treasury;
- `/operator/tournaments/{number}`: its settings (JSON text, parsed here and validated by
  `tournament.tournaments.update_settings`), its rounds, and per round the next transition
  (close, start scoring, resolve), each a form that needs an explicit confirmation. A
  scoring round can be scored now (`tournament.scoring.score_round`) when the server holds
  the tournament's market feed (`Services.runtimes`, given by `crowdquant serve`); opening a
  round needs the live-era publisher, which the web server does not hold: the page names
  the CLI and the scheduler;
- `/operator/tournaments/{number}/meta-model`: per round with a meta model, its performance
  (`tournament.meta_model.meta_model_performance`), then the fund's equity;
- `/operator/tournaments/{number}/test-set`: a 2017 tournament's test-set record
  (`tournament.rules2017_record.holdout_record`): each model's test-set log-loss per round, the
  figure of its counting upload, and its mean. These figures are the operator's alone
  (`visibility.HIDDEN_METRICS`); the meta model may weigh stakes by them (the setting
  ``"meta_model": {"weights": "stake_x_test"}``, `scoring.metamodel`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from crowdquant.db.models import (
    Round,
    RoundResult,
    RoundStatus,
    Tournament,
)
from crowdquant.tournament.datasets import aliases_by_version
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.funding import treasury_balance
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.meta_model import (
    MetaModelPerformance,
    fund_equity,
    meta_model_performance,
    meta_model_rounds,
)
from crowdquant.tournament.resolution import rounds_money
from crowdquant.tournament.rounds import RoundStateError, get_round, open_round_now
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.rules2017_record import holdout_record
from crowdquant.tournament.scoring import score_round
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.tournaments import (
    InvalidTournament,
    get_tournament,
    list_tournaments,
    update_settings,
)
from crowdquant.web.charts import line_chart
from crowdquant.web.deps import PageSession, Services, ServicesDep
from crowdquant.web.errors import PageError
from crowdquant.web.forms import FormErrors, Text, checked_form
from crowdquant.web.guards import OperatorAccount
from crowdquant.web.routing import PageRoute
from crowdquant.web.templating import render

router = APIRouter(route_class=PageRoute)
SHOWN_ROUNDS = 25
"""Rounds on the meta-model page by default (each reads two stored files)."""
MAX_SHOWN_ROUNDS = 1000
EQUITY_DAYS = 30
CONFIRM_ERROR = "Tick the box to confirm: nothing was changed."


# --- what the pages show -------------------------------------------------------------------------


def settings_text(settings: dict[str, Any]) -> str:
    """A tournament's settings JSON for a person: indented, keys sorted."""
    return json.dumps(settings, indent=2, sort_keys=True)


@dataclass(frozen=True)
class Action:
    """A round transition the operator may apply from the tournament page."""

    slug: str
    wanted: RoundStatus
    button: str
    confirmation: str
    done: str

    @property
    def starts_from(self) -> RoundStatus | None:
        return RoundLifecycle.previous_status(self.wanted)


ACTIONS: dict[str, Action] = {
    action.slug: action
    for action in (
        Action(
            "close",
            RoundStatus.CLOSED,
            "Close round {n}",
            "I confirm: close round {n} now. It takes no more submissions or stake changes,"
            " and its stakes are frozen at risk.",
            "Round {n} is closed: its stakes are frozen.",
        ),
        Action(
            "start-scoring",
            RoundStatus.SCORING,
            "Start scoring round {n}",
            "I confirm: start scoring round {n}. Its meta model is fixed at the first"
            " scoring pass; then it is scored each day as the market reveals its targets.",
            "Round {n} is scoring.",
        ),
        Action(
            "resolve",
            RoundStatus.RESOLVED,
            "Resolve round {n}",
            "I confirm: resolve round {n} now, on the scores stored so far. Its payouts and"
            " burns are final.",
            "Round {n} is resolved: its payouts are recorded.",
        ),
    )
}
NEXT_ACTION = {action.starts_from: action for action in ACTIONS.values()}
SCORE = "score"
SCORE_BUTTON = "Score round {n} now"
SCORE_CONFIRMATION = (
    "I confirm: score round {n} now, on every day the market has revealed. The new daily"
    " scores (and, the first time, its meta model) are stored for good."
)
NO_FEED = (
    "Scoring needs the market feed that reveals each day's targets, and this web server has"
    " none for tournament {number}: run it with crowdquant serve, whose scheduler also"
    " scores every scoring round as the market closes each day. Nothing was changed."
)


def _confirm_key(round_number: int, slug: str) -> str:
    return f"confirm-{round_number}-{slug}"


@dataclass(frozen=True)
class RoundLine:
    round: Round
    participants: int
    at_risk: int | None
    """NMR units at risk (frozen at close under the classic rules); None while not frozen."""
    result: RoundResult | None
    action: Action | None
    confirm_key: str
    score_key: str
    """The "Score now" form's confirmation key ("" unless the round is scoring)."""


def round_lines(session: Session, tournament: Tournament) -> list[RoundLine]:
    """The tournament's rounds, newest first, with their participants, stakes at risk and
    the control each one offers next."""
    lines = []
    for money in rounds_money(session, tournament):
        round_ = money.round
        action = NEXT_ACTION.get(round_.status)
        scoring = round_.status is RoundStatus.SCORING
        lines.append(
            RoundLine(
                round=round_,
                participants=money.participants,
                at_risk=money.at_risk,
                result=money.result,
                action=action,
                confirm_key="" if action is None else _confirm_key(round_.number, action.slug),
                score_key=_confirm_key(round_.number, SCORE) if scoring else "",
            )
        )
    return lines


class SettingsTextError(ValueError):
    """Settings text that is not a JSON object (the service validates the object)."""


def parsed_settings(text: str) -> dict[str, Any]:
    """The settings typed in the textarea as a JSON object; raises SettingsTextError."""
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SettingsTextError(
            f"settings are not JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})"
        ) from None
    if not isinstance(parsed, dict):
        raise SettingsTextError("settings must be a JSON object: {...}")
    return parsed


# --- the meta model's charts -------------------------------------------------------------------


def corr_chart(performance: Sequence[MetaModelPerformance]) -> str:
    """The meta model's CORR per round, beside the best single model's."""
    oldest_first = sorted(performance, key=lambda line: line.round)
    return line_chart(
        {
            "meta model": [(line.round, line.corr) for line in oldest_first],
            "best model": [(line.round, line.best_corr) for line in oldest_first],
        },
        title="CORR on the last day recorded, by round",
        y_label="CORR",
        empty="no CORR computed yet",
    )


def equity_chart(equity: Sequence[tuple[date, float]]) -> str:
    """The fund's equity by market day (1: the first day booked)."""
    return line_chart(
        {"equity": [(k, value) for k, (_, value) in enumerate(equity, start=1)]},
        title="Fund equity by market day, from 1",
        y_label="equity",
        x_label="market day",
        empty="no P&L booked yet",
    )


# --- pages --------------------------------------------------------------------------------------


def _tournament(session: Session, number: int) -> Tournament:
    return get_tournament(session, number)  # TournamentNotFound: a 404 page


def tournament_page(
    request: Request,
    session: Session,
    services: Services,
    tournament: Tournament,
    *,
    errors: FormErrors | None = None,
    typed_settings: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> Response:
    context = {
        "tournament": tournament,
        "settings_json": settings_text(tournament.settings),
        "typed_settings": (
            settings_text(tournament.settings) if typed_settings is None else typed_settings
        ),
        "rounds": round_lines(session, tournament),
        "can_score": services.runtime(tournament.number).targets is not None,
        "can_open": services.runtime(tournament.number).publisher is not None,
        "score_button": SCORE_BUTTON,
        "score_confirmation": SCORE_CONFIRMATION,
        "errors": errors or {},
        "notice": notice,
        "has_test_set": ruleset_of(tournament).publishes_2017_files,
    }
    return render(request, "operator/tournament.html", context, status=status)


@router.get("/operator")
def overview(
    request: Request, session: PageSession, services: ServicesDep, operator: OperatorAccount
) -> Response:
    tournaments = list_tournaments(session)
    report = services.ledger.verify(session)
    aliases = aliases_by_version(session)
    context = {
        "tournaments": [
            (found, settings_text(found.settings), aliases.get(found.dataset_version, []))
            for found in tournaments
        ],
        "report": report,
        "treasury": treasury_balance(session, services.ledger),
    }
    return render(request, "operator/overview.html", context)


DONE_SETTINGS = "settings"


@router.get("/operator/tournaments/{number}")
def tournament_view(
    request: Request,
    number: int,
    session: PageSession,
    services: ServicesDep,
    operator: OperatorAccount,
    done: str = "",
    round: int = 0,
) -> Response:
    tournament = _tournament(session, number)
    notice = None
    if done == DONE_SETTINGS:
        notice = "The settings are saved. Rounds already open keep their payout rule."
    elif done in ACTIONS and round > 0:
        notice = ACTIONS[done].done.format(n=round)
    return tournament_page(request, session, services, tournament, notice=notice)


@router.post("/operator/tournaments/{number}/settings", dependencies=[Depends(checked_form)])
def edit_settings(
    request: Request,
    number: int,
    session: PageSession,
    services: ServicesDep,
    operator: OperatorAccount,
    settings: Text = "",
) -> Response:
    tournament = _tournament(session, number)
    try:
        update_settings(session, tournament, parsed_settings(settings), clock=services.clock)
    except (SettingsTextError, InvalidTournament) as error:
        session.rollback()
        return tournament_page(
            request,
            session,
            services,
            _tournament(session, number),
            errors={"settings": str(error)},
            typed_settings=settings,
            status=422,
        )
    return RedirectResponse(f"/operator/tournaments/{number}?done={DONE_SETTINGS}", status_code=303)


def _refused(
    request: Request,
    session: Session,
    services: Services,
    number: int,
    key: str,
    message: str,
    status: int,
) -> Response:
    """The tournament's page again, nothing changed, with `message` at `key`'s place."""
    session.rollback()
    again = _tournament(session, number)
    return tournament_page(request, session, services, again, errors={key: message}, status=status)


NO_PUBLISHER = (
    "Opening a round publishes its live era, and this web server has no publisher for"
    " tournament {number}: run crowdquant round open --tournament {number} --now, or serve"
    " with crowdquant serve. Nothing was changed."
)


@router.post("/operator/tournaments/{number}/rounds/open", dependencies=[Depends(checked_form)])
def open_now(
    request: Request,
    number: int,
    session: PageSession,
    services: ServicesDep,
    operator: OperatorAccount,
    confirm: Text = "",
) -> Response:
    """Open the tournament's next round now, whatever the calendar says."""
    tournament = _tournament(session, number)
    publisher = services.runtime(number).publisher
    if publisher is None:
        message = NO_PUBLISHER.format(number=number)
        return _refused(request, session, services, number, "form", message, 409)
    if not confirm:
        return _refused(request, session, services, number, "confirm-open", CONFIRM_ERROR, 422)
    try:
        opened = open_round_now(session, services.clock, tournament, publisher)
    except ServiceError as error:
        message = f"The next round could not be opened ({error.message}): nothing was changed."
        return _refused(request, session, services, number, "form", message, 409)
    notice = f"Round {opened.number} is open until {opened.close_time:%Y-%m-%d %H:%M} UTC."
    return tournament_page(request, session, services, tournament, notice=notice)


@router.post(
    "/operator/tournaments/{number}/rounds/{round_number}/score",
    dependencies=[Depends(checked_form)],
)
def score_now(
    request: Request,
    number: int,
    round_number: int,
    session: PageSession,
    services: ServicesDep,
    operator: OperatorAccount,
    confirm: Text = "",
) -> Response:
    """Score a scoring round now on the days the market has revealed (as the scheduler does).

    The tournament's page is shown at once with what was added (`ScoringUpdate`): posting
    it again only finds nothing new to score."""
    tournament = _tournament(session, number)
    round_ = get_round(session, tournament, round_number)  # RoundNotFound: a 404 page
    source = services.runtime(number).targets
    if source is None:
        return _refused(
            request, session, services, number, "form", NO_FEED.format(number=number), 409
        )
    scoring = round_.status is RoundStatus.SCORING
    if not confirm:
        key = _confirm_key(round_number, SCORE) if scoring else "form"
        return _refused(request, session, services, number, key, CONFIRM_ERROR, 422)
    if not scoring:
        message = (
            f"Round {round_number} is {round_.status}: only a scoring round is scored."
            " Nothing was changed."
        )
        return _refused(request, session, services, number, "form", message, 409)
    try:
        update = score_round(session, services.clock, services.storage, round_, source)
    except ServiceError as error:
        message = (
            f"Round {round_number} could not be scored ({error.message}): nothing was changed."
        )
        return _refused(request, session, services, number, "form", message, 409)
    if update is None:
        notice = f"Round {round_number}: nothing new to score."
    else:
        notice = f"Scored {update}."
    return tournament_page(request, session, services, tournament, notice=notice)


@router.post(
    "/operator/tournaments/{number}/rounds/{round_number}/{action}",
    dependencies=[Depends(checked_form)],
)
def transition(
    request: Request,
    number: int,
    round_number: int,
    action: str,
    session: PageSession,
    services: ServicesDep,
    operator: OperatorAccount,
    confirm: Text = "",
) -> Response:
    wanted = ACTIONS.get(action)
    if wanted is None:
        raise PageError(404, f"There is no round action {action!r}.")
    tournament = _tournament(session, number)
    round_ = get_round(session, tournament, round_number)  # RoundNotFound: a 404 page
    if not confirm:
        shown = round_.status is wanted.starts_from  # the form with this checkbox is on the page
        key = _confirm_key(round_number, wanted.slug) if shown else "form"
        return _refused(request, session, services, number, key, CONFIRM_ERROR, 422)
    lifecycle = RoundLifecycle(services.ledger, services.clock)
    try:
        changed = lifecycle.move_to(session, round_, wanted.wanted)
    except RoundStateError as error:
        message = (
            f"Round {round_number} is {error.current}: it cannot become {error.wanted}."
            " Nothing was changed."
        )
        return _refused(request, session, services, number, "form", message, 409)
    if not changed:
        return tournament_page(
            request,
            session,
            services,
            tournament,
            notice=f"Round {round_number} was already {wanted.wanted}: nothing was changed.",
        )
    return RedirectResponse(
        f"/operator/tournaments/{number}?done={wanted.slug}&round={round_number}",
        status_code=303,
    )


@router.get("/operator/tournaments/{number}/settings")
@router.get("/operator/tournaments/{number}/rounds/{round_number}/{action}")
def back_to_tournament(number: int, operator: OperatorAccount) -> Response:
    """A form's address reached by GET (e.g. signing in again after posting it): its page."""
    return RedirectResponse(f"/operator/tournaments/{number}", status_code=303)


@router.get("/operator/tournaments/{number}/meta-model")
def meta_model(
    request: Request,
    number: int,
    session: PageSession,
    services: ServicesDep,
    operator: OperatorAccount,
    rounds: int = SHOWN_ROUNDS,
) -> Response:
    tournament = _tournament(session, number)
    rounds = min(max(rounds, 1), MAX_SHOWN_ROUNDS)
    performance = meta_model_performance(session, services.storage, tournament, limit=rounds)
    equity = fund_equity(session, tournament)
    context = {
        "tournament": tournament,
        "lines": performance,
        "total": meta_model_rounds(session, tournament),
        "corr_chart": corr_chart(performance),
        "equity": equity[-EQUITY_DAYS:][::-1],
        "equity_days": len(equity),
        "final_equity": equity[-1][1] if equity else None,
        "equity_chart": equity_chart(equity),
    }
    return render(request, "operator/meta_model.html", context)


@router.get("/operator/tournaments/{number}/test-set")
def test_set(
    request: Request, number: int, session: PageSession, operator: OperatorAccount
) -> Response:
    tournament = _tournament(session, number)
    has_test_set = ruleset_of(tournament).publishes_2017_files
    context = {
        "tournament": tournament,
        "has_test_set": has_test_set,
        "record": holdout_record(session, tournament) if has_test_set else None,
        "weighting": settings_of(tournament).meta_model.weights,
    }
    return render(request, "operator/test_set.html", context)
