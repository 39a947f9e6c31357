"""`rounds`: the current round (``number: 0``), one round, or a tournament's rounds."""

from __future__ import annotations

from typing import Any

from ariadne import QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import context_of, iso, required
from crowdquant.db.models import Round, RoundStatus
from crowdquant.tournament.rounds import current_round, get_round, list_rounds
from crowdquant.tournament.tournaments import get_tournament

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
