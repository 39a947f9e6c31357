"""`rounds`: the current round (``number: 0``), one round, or a tournament's rounds;
`pipelineStatus`: what a tournament's pipeline did on one day."""

from __future__ import annotations

from datetime import date
from typing import Any

from ariadne import QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import ApiError, context_of, iso, required
from crowdquant.db.models import Round, RoundStatus
from crowdquant.tournament.pipeline import pipeline_status, tournament_number_of
from crowdquant.tournament.rounds import current_round, get_round, list_rounds
from crowdquant.tournament.tournaments import get_tournament, list_tournaments

query = QueryType()

# numerapi's RoundStatus values → our round statuses.
STATUSES: dict[str, tuple[RoundStatus, ...]] = {
    "UPCOMING": (),  # rounds exist only once opened
    "OPEN": (RoundStatus.OPEN,),
    "RESOLVING": (RoundStatus.CLOSED, RoundStatus.SCORING),
    "RESOLVED": (RoundStatus.RESOLVED,),
}


def render_round(round_: Round) -> dict[str, Any]:
    """A round as numerapi reads it: times as UTC strings, no scoring configs yet
    (`payoutFactor` and `resolvedStaking` come from its result, see `stakes.py`)."""
    resolved = round_.status is RoundStatus.RESOLVED
    return {
        "id": str(round_.id),
        "tournament": round_.tournament.number,
        "number": round_.number,
        "target": None,
        "openTime": iso(round_.open_time),
        "closeTime": iso(round_.close_time),
        "closeStakingTime": iso(round_.close_staking_time),
        "scoreTime": None,
        "resolveTime": iso(round_.resolve_time),
        "resolvedGeneral": resolved,
        "stakeThreshold": None,
        "dataDatestamp": None,
        "roundScoreConfigs": [],
    }


@query.field("rounds")
def resolve_rounds(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    tournament: int | None = None,
    number: int | None = None,
    status: str | None = None,
    limit: int | None = None,
    **_ignored: Any,
) -> list[dict[str, Any] | None]:
    session = context_of(info).session
    found = get_tournament(session, required(tournament, "tournament"))
    if number == 0:
        # numerapi indexes [0]: answer [null] rather than [] before the first round.
        latest = current_round(session, found)
        return [None if latest is None else render_round(latest)]
    if number is not None:
        return [render_round(get_round(session, found, number))]
    rounds = list_rounds(session, found, None if status is None else STATUSES[status])
    rounds.reverse()  # newest first
    if limit is not None:
        rounds = rounds[: max(limit, 0)]
    return [render_round(round_) for round_ in rounds]


@query.field("pipelineStatus")
def resolve_pipeline_status(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    date: str | None = None,
    tournament: str | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    session = context.session
    name = str(required(tournament, "tournament"))
    number = tournament_number_of(list_tournaments(session), name)
    if number is None:
        raise ApiError(f"there is no tournament named {name!r}")
    day = context.clock.now().date() if date is None else _day(date)
    status = pipeline_status(session, context.clock, get_tournament(session, number), day)
    return {
        "tournament": name,
        "isScoringDay": status.is_scoring_day,
        "dataReadyAt": iso(status.data_ready_at),
        "startedAt": iso(status.started_at),
        "scoredAt": iso(status.scored_at),
        "resolvedAt": iso(status.resolved_at),
    }


def _day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ApiError(f"a date is YYYY-MM-DD, not {text!r}") from None
