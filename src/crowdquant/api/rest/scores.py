"""Scores (public): leaderboards of models and accounts, a round's ranked table, a model's
day-by-day scores. Read through `tournament.leaderboard`, which asks the visibility policy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from crowdquant.api.rest.deps import (
    LedgerDep,
    Limit,
    Offset,
    RoundRef,
    SessionDep,
    TournamentNumber,
)
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.base import Overlay
from crowdquant.api.rest.schemas.scores import DailyScoreOut, RoundScoresOut, StandingOut
from crowdquant.api.rest.tournaments import find_round
from crowdquant.http.services import ServicesDep
from crowdquant.tournament.leaderboard import (
    account_leaderboard,
    model_leaderboard,
    model_score_history,
    round_table,
)
from crowdquant.tournament.models import find_model
from crowdquant.tournament.rounds import round_score_configs
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import Viewer

router = APIRouter(tags=["scores"], route_class=RestRoute)

Metric = Annotated[str | None, Query(max_length=32, pattern=r"^[a-z0-9_]+$")]


@router.get("/tournaments/{number}/leaderboard", responses=responses(404))
def get_leaderboard(
    number: TournamentNumber,
    session: SessionDep,
    services: ServicesDep,
    ledger: LedgerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[StandingOut]:
    """Every model, ranked by reputation (the mean of its final scores over the window),
    with its stake now and its career payouts."""
    tournament = get_tournament(session, number)
    board = model_leaderboard(
        session, tournament, services.clock.now(), Viewer.public(), ledger=ledger
    )
    return [StandingOut.model_validate(row) for row in board[offset : offset + limit]]


@router.get("/tournaments/{number}/leaderboard/accounts", responses=responses(404))
def get_account_leaderboard(
    number: TournamentNumber,
    session: SessionDep,
    services: ServicesDep,
    ledger: LedgerDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[StandingOut]:
    """Every account with a model in the tournament, over all its models' rounds."""
    tournament = get_tournament(session, number)
    board = account_leaderboard(
        session, tournament, services.clock.now(), Viewer.public(), ledger=ledger
    )
    return [StandingOut.model_validate(row) for row in board[offset : offset + limit]]


@router.get("/tournaments/{number}/rounds/{round}/scores", responses=responses(404))
def get_round_scores(
    number: TournamentNumber, round: RoundRef, session: SessionDep
) -> RoundScoresOut:
    """The round's models ranked by their latest scores (final once resolved)."""
    found = find_round(session, get_tournament(session, number), round)
    return RoundScoresOut(
        round=Overlay(found, is_open=False, score_configs=round_score_configs(found)),
        models=round_table(session, found, Viewer.public()),
    )


@router.get("/tournaments/{number}/models/{model}/scores", responses=responses(404))
def get_model_scores(
    number: TournamentNumber,
    model: Annotated[str, Path(min_length=1, max_length=64)],
    session: SessionDep,
    metric: Metric = None,
) -> list[DailyScoreOut]:
    """Every score of a model (by name or id), round by round and day by day, with its
    percentile among the round's models that day."""
    found = find_model(session, number, model)
    history = model_score_history(session, found, Viewer.public(), metric=metric)
    return [DailyScoreOut.model_validate(score) for score in history]
