"""Public scores: leaderboards, model profiles, round performances, `submissionScores`.

Everything here is public (numerapi sends no key) and read through
`tournament.leaderboard`, which asks the visibility policy. Our metric names are the
`displayName`s (`corr`, `mmc`, `fnc`, `bmc`, `cwmm`, ...); reputations map onto numerapi's
`corr20Rep`/`corrRep`, `mmcRep`, `fncRep`, `bmcRep`. Stakes (`nmrStaked`, `stakeValue`,
`atRisk`) and payouts (`payoutSettled`, `returnAllTimeNmr`) come from the ledger and the
resolved rounds (`stakes.py`); a payout is null until its round resolves.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from ariadne import QueryType
from graphql import GraphQLResolveInfo
from sqlalchemy.orm import Session

from crowdquant.api.graphql.context import RequestContext, context_of, iso, required
from crowdquant.api.graphql.rounds import render_payout_multipliers
from crowdquant.api.graphql.stakes import round_results
from crowdquant.db.models import Model, Round, RoundStatus, Tournament
from crowdquant.ledger.accounts import stake
from crowdquant.money import Currency, nmr_text
from crowdquant.scoring import SCORING_VERSION
from crowdquant.tournament.leaderboard import (
    DailyScore,
    Standing,
    account_leaderboard,
    model_leaderboard,
    model_score_history,
)
from crowdquant.tournament.models import find_model
from crowdquant.tournament.resolution import model_payouts
from crowdquant.tournament.rounds import rounds_by_id
from crowdquant.tournament.staking import round_stakes
from crowdquant.tournament.tournaments import get_tournament, list_tournaments
from crowdquant.tournament.visibility import Viewer

query = QueryType()
DEFAULT_LIMIT = 50


def _page(rows: list[Any], limit: int | None, offset: int | None) -> list[Any]:
    start = max(offset or 0, 0)
    return rows[start : start + max(DEFAULT_LIMIT if limit is None else limit, 0)]


def _default_tournament(session: Session) -> Tournament:
    """The tournament a call without `tournament` means: 8 if it exists, else the first."""
    tournaments = list_tournaments(session)
    if not tournaments:
        return get_tournament(session, 8)  # raises the usual "no tournament 8"
    return next((t for t in tournaments if t.number == 8), tournaments[0])


@query.field("tournaments")
def resolve_tournaments(_obj: Any, info: GraphQLResolveInfo[Any]) -> list[dict[str, Any]]:
    return [
        {"name": t.name, "tournament": t.number} for t in list_tournaments(context_of(info).session)
    ]


@query.field("v2Leaderboard")
def resolve_leaderboard(
    _obj: Any, info: GraphQLResolveInfo[Any], limit: int | None = None, offset: int | None = None
) -> list[dict[str, Any]]:
    context = context_of(info)
    tournament = _default_tournament(context.session)
    board = model_leaderboard(
        context.session, tournament, context.clock.now(), Viewer.public(), ledger=context.ledger
    )
    return [_model_entry(row) for row in _page(board, limit, offset)]


def _model_entry(row: Standing) -> dict[str, Any]:
    rep = row.reputation
    return {
        "username": row.name,
        "rank": row.rank,
        "nmrStaked": nmr_text(row.stake),
        "corr20Rep": rep.get("corr"),
        "corr20V2Rep": rep.get("corr"),
        "corj60Rep": None,
        "fncRep": rep.get("fnc"),
        "fncV3Rep": rep.get("fnc"),
        "tcRep": None,
        "mmcRep": rep.get("mmc"),
        "bmcRep": rep.get("bmc"),
        "team": False,
        "return_1_day": None,
        "return_52_weeks": None,
        "return_13_weeks": None,
    }


@query.field("accountLeaderboard")
def resolve_account_leaderboard(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    limit: int | None = None,
    offset: int | None = None,
    tournament: int | None = None,
) -> list[dict[str, Any]]:
    context = context_of(info)
    session = context.session
    found = (
        _default_tournament(session) if tournament is None else get_tournament(session, tournament)
    )
    board = account_leaderboard(
        session, found, context.clock.now(), Viewer.public(), ledger=context.ledger
    )
    return [
        {
            "username": row.name,
            "displayName": row.name,
            "rank": row.rank,
            "nmrStaked": nmr_text(row.stake),
            "v2Corr20": row.reputation.get("corr"),
            "corrV4": row.reputation.get("corr"),
            "fncV4": row.reputation.get("fnc"),
            "mmc": row.reputation.get("mmc"),
            "return1yNmr": nmr_text(row.nmr_last_year),
            "return3mNmr": nmr_text(row.nmr_last_quarter),
            "returnAllTimeNmr": nmr_text(row.career_nmr),
        }
        for row in _page(board, limit, offset)
    ]


@query.field("v3UserProfile")
def resolve_profile(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    model_name: str | None = None,
    modelName: str | None = None,
    tournament: int | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    session = context.session
    name = required(model_name or modelName, "model_name")
    number = tournament if tournament is not None else _default_tournament(session).number
    model = find_model(session, number, name)
    staked = nmr_text(context.ledger.balance(session, stake(model.id), Currency.NMR))

    # the histories are read only for a query that asks for them (numerapi's `stake_get`
    # asks for the stake alone), and once for both
    @cache
    def history() -> list[DailyScore]:
        return model_score_history(session, model, Viewer.public())

    def daily(*_: Any) -> list[dict[str, Any]]:
        board = model_leaderboard(
            session, model.tournament, context.clock.now(), Viewer.public(), ledger=context.ledger
        )
        mine = next(row for row in board if row.model_id == model.id)
        return _daily_performances(session, history(), mine)

    return {
        "id": str(model.id),
        "username": model.name,
        "startDate": iso(model.created_at),
        "bio": model.bio,
        "nmrStaked": staked,
        "stakeValue": staked,
        "dailyModelPerformances": daily,
        "roundModelPerformances": lambda *_: _legacy_round_performances(context, model, history()),
    }


def _daily_performances(
    session: Session, history: list[DailyScore], mine: Standing
) -> list[dict[str, Any]]:
    """One entry per scoring date: the latest day's values, with today's rank and reputation
    on the newest entry (reputation is not kept as a history)."""
    dates = _score_dates(session, history)
    entries = [
        {
            "date": dates.get((score.round_id, score.day)),
            "corrRep": score.value if score.metric == "corr" else None,
            "corrRank": None,
            "mmcRep": None,
            "mmcRank": None,
            "fncRep": None,
            "fncRank": None,
            "fncV3Rep": None,
            "fncV3Rank": None,
            "tcRep": None,
            "tcRank": None,
        }
        for score in history
        if score.metric == "corr" and not score.late
    ]
    if entries:
        entries[-1].update(
            corrRep=mine.reputation.get("corr"),
            corrRank=mine.rank,
            mmcRep=mine.reputation.get("mmc"),
            mmcRank=mine.rank,
            fncRep=mine.reputation.get("fnc"),
            fncV3Rep=mine.reputation.get("fnc"),
        )
    return entries


def _score_dates(session: Session, history: list[DailyScore]) -> dict[tuple[Any, int], str | None]:
    """The date a day's score refers to: the round's close plus that many days."""
    rounds = rounds_by_id(session, {score.round_id for score in history})
    return {
        (score.round_id, score.day): iso(
            rounds[score.round_id].close_time + timedelta(days=score.day)
        )
        for score in history
    }


def _by_round(history: list[DailyScore]) -> dict[Any, list[DailyScore]]:
    grouped: dict[Any, list[DailyScore]] = defaultdict(list)
    for score in history:
        grouped[score.round_id].append(score)
    return grouped


@dataclass(frozen=True)
class _RoundMoney:
    """A model's stake and payout in one round, as numerapi's strings."""

    at_risk: str
    payout: str | None
    """The resolved payout (NMR, signed); None until the round's payouts are resolved."""
    payout_factor: str | None


def _round_money(
    context: RequestContext, model: Model, rounds: dict[Any, Round]
) -> dict[Any, _RoundMoney]:
    stakes = round_stakes(context.session, model)
    payouts = model_payouts(context.session, model)
    results = round_results(context, model.tournament.number)
    money = {}
    for round_id in rounds:
        result = results.get(str(round_id))
        payout = payouts.get(round_id)
        money[round_id] = _RoundMoney(
            at_risk=nmr_text(stakes.get(round_id, 0)),
            payout=None if result is None else nmr_text(0 if payout is None else payout.nmr),
            payout_factor=None if result is None else result.payout_factor,
        )
    return money


def _legacy_round_performances(
    context: RequestContext, model: Model, history: list[DailyScore]
) -> list[dict[str, Any]]:
    rounds = rounds_by_id(context.session, _by_round(history))
    money = _round_money(context, model, rounds)
    out = []
    for round_id, scores in _by_round(history).items():
        last = max(score.day for score in scores)
        final = {score.metric: score for score in scores if score.day in (0, last)}
        round_ = rounds[round_id]
        value = {metric: score.value for metric, score in final.items()}.get
        percentile = {metric: score.percentile for metric, score in final.items()}.get
        out.append(
            {
                "roundNumber": round_.number,
                "roundOpenTime": iso(round_.open_time),
                "roundResolveTime": iso(round_.resolve_time),
                "roundResolved": round_.status is RoundStatus.RESOLVED,
                "roundTarget": None,
                "corr": value("corr"),
                "corrPercentile": percentile("corr"),
                "mmc": value("mmc"),
                "mmcPercentile": percentile("mmc"),
                "fnc": value("fnc"),
                "fncPercentile": percentile("fnc"),
                "corrWMetamodel": value("cwmm"),
                "payout": money[round_id].payout,
                "roundPayoutFactor": money[round_id].payout_factor,
                "selectedStakeValue": money[round_id].at_risk,
            }
        )
    return sorted(out, key=lambda row: -int(row["roundNumber"]))


def _legacy_multipliers(multipliers: list[dict[str, Any]]) -> dict[str, float | None]:
    """numerapi ≤ 2.24's `corrMultiplier` / `mmcMultiplier` (no TC here)."""
    by_name = {row["name"]: row["multiplier"] for row in multipliers}
    return {
        "corrMultiplier": by_name.get("corr"),
        "mmcMultiplier": by_name.get("mmc"),
        "tcMultiplier": None,
    }


@query.field("v2RoundModelPerformances")
def resolve_round_performances(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    modelId: str | None = None,
    tournament: int | None = None,
) -> list[dict[str, Any]]:
    context = context_of(info)
    session = context.session
    number = tournament if tournament is not None else _default_tournament(session).number
    model = find_model(session, number, required(modelId, "modelId"))
    history = model_score_history(session, model, Viewer.public())
    dates = _score_dates(session, history)
    rounds = rounds_by_id(session, _by_round(history))
    money = _round_money(context, model, rounds)
    out = []
    for round_id, scores in _by_round(history).items():
        round_ = rounds[round_id]
        last = max(score.day for score in scores)
        multipliers = render_payout_multipliers(round_)

        def render(score: DailyScore, last: int = last, round_id: Any = round_id) -> dict[str, Any]:
            return {
                "date": dates.get((score.round_id, score.day)),
                "day": score.day,
                "displayName": score.metric,
                "payoutPending": None,
                "payoutSettled": money[round_id].payout if score.day == last else None,
                "percentile": score.percentile,
                "value": score.value,
            }

        out.append(
            {
                "atRisk": money[round_id].at_risk,
                **_legacy_multipliers(multipliers),
                "payoutMultipliers": multipliers,
                "roundPayoutFactor": money[round_id].payout_factor,
                "roundNumber": round_.number,
                "roundOpenTime": iso(round_.open_time),
                "roundResolveTime": iso(round_.resolve_time),
                "roundResolved": round_.status is RoundStatus.RESOLVED,
                "roundTarget": None,
                "submissionScores": [render(s) for s in scores if s.day in (0, last)],
                "intraRoundSubmissionScores": [render(s) for s in scores],
            }
        )
    return sorted(out, key=lambda row: -int(row["roundNumber"]))


@query.field("submissionScores")
def resolve_submission_scores(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    modelId: str | None = None,
    displayName: str | None = None,
    version: str | None = None,
    day: int | None = None,
    resolved: bool | None = None,
    tournament: int | None = None,
    lastNRounds: int | None = None,
    distinctOnRound: bool | None = None,
) -> list[dict[str, Any]]:
    context = context_of(info)
    session = context.session
    number = tournament if tournament is not None else _default_tournament(session).number
    model = find_model(session, number, required(modelId, "modelId"))
    if version is not None and version != SCORING_VERSION:
        return []
    history = model_score_history(session, model, Viewer.public(), metric=displayName)
    rounds = rounds_by_id(session, _by_round(history))
    dates = _score_dates(session, history)
    scores = [
        s
        for s in history
        if (day is None or s.day == day)
        and (resolved is None or (rounds[s.round_id].status is RoundStatus.RESOLVED) == resolved)
    ]
    if distinctOnRound:
        newest: dict[tuple[Any, str], DailyScore] = {}
        for s in scores:
            newest[(s.round_id, s.metric)] = s  # history is by day: the last one stays
        scores = list(newest.values())
    if lastNRounds is not None:
        keep = sorted({s.round for s in scores}, reverse=True)[: max(lastNRounds, 0)]
        scores = [s for s in scores if s.round in keep]
    return [
        {
            "roundId": str(s.round_id),
            "submissionId": str(s.submission_id),
            "roundNumber": s.round,
            "roundResolveTime": iso(rounds[s.round_id].resolve_time),
            "roundScoreTime": None,
            "roundCloseStakingTime": iso(rounds[s.round_id].close_staking_time),
            "value": s.value,
            "percentile": s.percentile,
            "displayName": s.metric,
            "version": SCORING_VERSION,
            "date": dates.get((s.round_id, s.day)),
            "day": s.day,
            "resolveDate": iso(rounds[s.round_id].resolve_time),
            "resolved": rounds[s.round_id].status is RoundStatus.RESOLVED,
        }
        for s in sorted(scores, key=lambda s: (-s.round, s.day, s.metric))
    ]
