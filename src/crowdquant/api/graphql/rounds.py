"""`rounds`: the current round (``number: 0``), one round, or a tournament's rounds;
`pipelineStatus`: what a tournament's pipeline did on one day."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from ariadne import QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import ApiError, context_of, iso, required
from crowdquant.db.models import Round, RoundStatus
from crowdquant.money import NMR_UNIT
from crowdquant.payouts import ScoreConfig
from crowdquant.tournament.pipeline import pipeline_status, tournament_number_of
from crowdquant.tournament.rounds import (
    current_round,
    get_round,
    list_rounds,
    round_score_configs,
)
from crowdquant.tournament.tournaments import get_tournament, list_tournaments

query = QueryType()

# numerapi's RoundStatus values → our round statuses.
STATUSES: dict[str, tuple[RoundStatus, ...]] = {
    "UPCOMING": (),  # rounds exist only once opened
    "OPEN": (RoundStatus.OPEN,),
    "RESOLVING": (RoundStatus.CLOSED, RoundStatus.SCORING),
    "RESOLVED": (RoundStatus.RESOLVED,),
}


def _number(value: Decimal | None) -> float | None:
    return None if value is None else float(value)


def _nmr(units: int | None) -> float | None:
    return None if units is None else float(Decimal(units) / NMR_UNIT)


def render_score_config(round_: Round, config: ScoreConfig) -> dict[str, Any]:
    """One of a round's score configs as numerapi's `RoundScoreConfig`."""
    return {
        "id": f"{round_.id}:{config.score_config_id}",
        "scoreConfigId": config.score_config_id,
        "roundNumberStart": config.round_number_start,
        "roundNumberEnd": config.round_number_end,
        "name": config.name,
        "version": config.version,
        "displayName": config.display_name,
        "totalScoreDays": config.total_score_days,
        "returnsLagDays": config.returns_lag_days,
        "dataDelayDays": config.data_delay_days,
        "universe": config.universe,
        "isCanonScore": config.is_canon_score,
        "isPayout": config.is_payout,
        "scoringStart": iso(config.scoring_start),
        "scoringEnd": iso(config.scoring_end),
        "minMultiplier": _number(config.min_multiplier),
        "maxMultiplier": _number(config.max_multiplier),
        "defaultMultiplier": _number(config.default_multiplier),
        "clipThreshold": _number(config.clip_threshold),
        "stakeThreshold": _nmr(config.stake_threshold),
        "payoutFactor": _number(config.payout_factor),
        "hurdle": _number(config.hurdle),
    }


def render_payout_multipliers(round_: Round) -> list[dict[str, Any]]:
    """The multipliers `round_` pays by, as numerapi's `PayoutMultiplier`s."""
    return [
        {
            "id": f"{round_.id}:{config.score_config_id}",
            "scoreConfigId": config.score_config_id,
            "name": config.name,
            "version": config.version,
            "displayName": config.display_name,
            "multiplier": _number(config.default_multiplier),
        }
        for config in round_score_configs(round_)
        if config.is_payout
    ]


def render_round(round_: Round) -> dict[str, Any]:
    """A round as numerapi reads it: times as UTC strings, its score configs as recorded
    when it opened (`payoutFactor` and `resolvedStaking` come from its result, see
    `stakes.py`)."""
    resolved = round_.status is RoundStatus.RESOLVED
    configs = round_score_configs(round_)
    thresholds = {c.stake_threshold for c in configs if c.stake_threshold is not None}
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
        "stakeThreshold": _nmr(min(thresholds)) if thresholds else None,
        "dataDatestamp": None,
        "roundScoreConfigs": [render_score_config(round_, config) for config in configs],
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
