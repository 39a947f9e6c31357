"""Tournaments and their rounds (public): ``round`` is a number, or ``current`` / 0 for the
newest round."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from crowdquant.api.rest.deps import RoundRef, SessionDep, TournamentNumber
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.base import Overlay
from crowdquant.api.rest.schemas.tournaments import RoundOut, TournamentOut
from crowdquant.db.models import Round, RoundStatus, Tournament
from crowdquant.http.services import ServicesDep
from crowdquant.tournament.rounds import (
    RoundNotFound,
    current_round,
    get_round,
    is_open,
    newest_rounds,
    round_score_configs,
)
from crowdquant.tournament.tournaments import get_tournament, list_tournaments

router = APIRouter(tags=["tournaments"], route_class=RestRoute)


def find_round(session: Session, tournament: Tournament, ref: int | str) -> Round:
    """Round `ref` of `tournament`; ``current`` or 0 is the newest. Raises RoundNotFound."""
    if ref in ("current", 0):
        latest = current_round(session, tournament)
        if latest is None:
            raise RoundNotFound(f"tournament {tournament.number} has no round yet")
        return latest
    return get_round(session, tournament, int(ref))


@router.get("/tournaments")
def get_tournaments(session: SessionDep) -> list[TournamentOut]:
    """Every tournament, by number."""
    return [TournamentOut.model_validate(found) for found in list_tournaments(session)]


@router.get("/tournaments/{number}", responses=responses(404))
def get_one_tournament(number: TournamentNumber, session: SessionDep) -> TournamentOut:
    return TournamentOut.model_validate(get_tournament(session, number))


@router.get("/tournaments/{number}/rounds", responses=responses(404))
def get_rounds(
    number: TournamentNumber,
    session: SessionDep,
    services: ServicesDep,
    status: Annotated[list[RoundStatus] | None, Query(description="Only these statuses.")] = None,
    limit: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> list[RoundOut]:
    """The tournament's rounds, newest first."""
    tournament = get_tournament(session, number)
    now = services.clock.now()
    return [round_out(round_, now) for round_ in newest_rounds(session, tournament, status, limit)]


@router.get("/tournaments/{number}/rounds/{round}", responses=responses(404))
def get_one_round(
    number: TournamentNumber, round: RoundRef, session: SessionDep, services: ServicesDep
) -> RoundOut:
    found = find_round(session, get_tournament(session, number), round)
    return round_out(found, services.clock.now())


def round_out(round_: Round, now: datetime) -> RoundOut:
    return RoundOut.model_validate(
        Overlay(round_, is_open=is_open(round_, now), score_configs=round_score_configs(round_))
    )
