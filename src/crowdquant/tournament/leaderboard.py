"""Leaderboards, reputation and score histories, read from the stored daily scores.

A round's *latest* scores are those of the last day it has been scored for (day 0 for the
figures that need no target); once it resolves they are its *final* scores. A model's
reputation in a metric is the mean of its final scores over the rounds resolved within the
window (default one year; a tournament may set `reputation_days`), so under the 2017 rules
the reputation in `originality_2017` is the share of rounds it passed the gate in;
consistency is the share of those rounds it did well in (CORR above 0, or under the 2017
rules logloss below the round's benchmark models', `benchmark_logloss`, else below ln 2).
Late submissions are shown in their round but never count towards reputation. Models rank
by reputation in the tournament's rank metric (CORR; logloss, lowest first, under the 2017
rules), then by name.

Each row also carries the model's (or account's) career NMR (paid minus burned) and career
USD over its resolved rounds, and, when the caller passes the ledger, its stake now.
Every read goes through `visibility`.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import asdict, astuple, dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.db.models import (
    Account,
    MetaModel,
    Model,
    Round,
    RoundScore,
    RoundStatus,
    Submission,
    Tournament,
)
from crowdquant.ledger import Ledger, stake
from crowdquant.money import Currency
from crowdquant.tournament.resolution import career_payouts
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.visibility import Viewer, score_visible

LN2 = math.log(2)
BENCHMARK_LOGLOSS = "benchmark_logloss"
COLUMNS = ["round_id", "round", "status", "resolve_time", "model_id", "metric", "day", "value"]


def rank_metric(tournament: Tournament) -> tuple[str, bool]:
    """The metric models are ranked by, and whether higher is better."""
    return ruleset_of(tournament).rank_metric


def reputation_window(tournament: Tournament) -> timedelta:
    return timedelta(days=settings_of(tournament).reputation_days)


def latest_scores(
    session: Session, tournament: Tournament, viewer: Viewer, *, model_id: uuid.UUID | None = None
) -> pd.DataFrame:
    """Per (round, model, metric) the value on the last day the round has that metric for
    (day 0 for the figures that need no target, e.g. originality).

    Columns: round_id, round, status, resolve_time, model_id, metric, day, value, late.
    """
    last_day = (
        select(
            RoundScore.round_id,
            RoundScore.metric,
            func.max(RoundScore.day).label("day"),
        )
        .join(Round, Round.id == RoundScore.round_id)
        .where(Round.tournament_id == tournament.id)
        .group_by(RoundScore.round_id, RoundScore.metric)
        .subquery()
    )
    query = (
        select(
            Round.id,
            Round.number,
            Round.status,
            Round.resolve_time,
            RoundScore.model_id,
            RoundScore.metric,
            RoundScore.day,
            RoundScore.value,
            RoundScore.late,
        )
        .join(Round, Round.id == RoundScore.round_id)
        .join(
            last_day,
            (last_day.c.round_id == RoundScore.round_id)
            & (last_day.c.metric == RoundScore.metric)
            & (last_day.c.day == RoundScore.day),
        )
        .where(Round.tournament_id == tournament.id)
    )
    if model_id is not None:
        query = query.where(RoundScore.model_id == model_id)
    frame = pd.DataFrame(session.execute(query).all(), columns=[*COLUMNS, "late"])
    if frame.empty:
        return frame
    visible = frame["metric"].map(lambda metric: score_visible(metric, viewer))
    return frame[visible.astype(bool)].reset_index(drop=True)


@dataclass(frozen=True)
class Standing:
    """One row of a leaderboard: a model, or an account over all its models."""

    rank: int
    name: str
    reputation: dict[str, float]
    consistency: float | None
    rounds: int
    latest: dict[str, float] = field(default_factory=dict)
    latest_round: int | None = None
    model_id: uuid.UUID | None = None
    account: str | None = None
    stake: int = 0
    """NMR staked now, 10^-18 units (filled when the leaderboard is given the ledger)."""
    career_nmr: int = 0
    """NMR paid minus NMR burned over every resolved round, 10^-18 units."""
    career_usd: int = 0
    """USD paid over every resolved round, cents."""
    nmr_last_year: int = 0
    """NMR paid minus burned over the rounds resolved in the last 365 days."""
    nmr_last_quarter: int = 0
    """The same over the last 91 days."""


def _finals(scores: pd.DataFrame, now: datetime, window: timedelta) -> pd.DataFrame:
    if scores.empty:
        return scores
    resolved = scores[(scores["status"] == RoundStatus.RESOLVED) & ~scores["late"]]
    times = pd.to_datetime(resolved["resolve_time"], utc=True)
    return resolved[times >= pd.Timestamp(now - window)]


def _did_well(finals: pd.DataFrame, metric: str, higher_is_better: bool) -> pd.Series:
    rows = finals[(finals["metric"] == metric) & finals["value"].notna()]
    if higher_is_better:
        return rows["value"] > 0
    benchmark = finals[finals["metric"] == BENCHMARK_LOGLOSS].set_index(["round_id", "model_id"])
    bar = benchmark["value"].reindex(pd.MultiIndex.from_frame(rows[["round_id", "model_id"]]))
    return rows["value"] < bar.fillna(LN2).to_numpy()


def _means(scores: pd.DataFrame) -> dict[str, float]:
    """Per metric, the mean of the values (NaN left out), summed exactly (`math.fsum`): the
    same figure whatever order the rows were read in (the database's, that of random ids)."""
    if scores.empty:
        return {}
    means = {}
    for metric, values in scores.groupby("metric")["value"]:
        known = values.dropna().astype(float)
        if len(known):
            means[str(metric)] = math.fsum(known) / len(known)
    return means


def _standings(
    scores: pd.DataFrame,
    group: str,
    names: Mapping[Any, str],
    tournament: Tournament,
    now: datetime,
) -> list[Standing]:
    metric, higher = rank_metric(tournament)
    finals = _finals(scores, now, reputation_window(tournament))
    rows = []
    for key, name in names.items():
        mine = finals[finals[group] == key] if not finals.empty else finals
        reputation = _means(mine)
        well = _did_well(mine, metric, higher) if not mine.empty else pd.Series(dtype=bool)
        latest: dict[str, float] = {}
        latest_round = None
        if not scores.empty and (scores[group] == key).any():
            own = scores[scores[group] == key]
            latest_round = int(own["round"].max())
            latest = _means(own[own["round"] == latest_round])
        rows.append(
            Standing(
                rank=0,
                name=name,
                reputation=reputation,
                consistency=float(well.mean()) if len(well) else None,
                rounds=int(mine["round_id"].nunique()) if not mine.empty else 0,
                latest=latest,
                latest_round=latest_round,
                model_id=key if isinstance(key, uuid.UUID) and group == "model_id" else None,
            )
        )

    def order(row: Standing) -> tuple[bool, float, str]:
        value = row.reputation.get(metric)
        if value is None:
            return (True, 0.0, row.name)
        return (False, -value if higher else value, row.name)

    return [
        Standing(**{**row.__dict__, "rank": rank})
        for rank, row in enumerate(sorted(rows, key=order), start=1)
    ]


@dataclass(frozen=True)
class _Money:
    stake: int
    career_nmr: int
    career_usd: int
    nmr_last_year: int
    nmr_last_quarter: int

    def __add__(self, other: _Money) -> _Money:
        return _Money(*(a + b for a, b in zip(astuple(self), astuple(other), strict=True)))


NO_MONEY = _Money(0, 0, 0, 0, 0)
LAST_YEAR, LAST_QUARTER = timedelta(days=365), timedelta(days=91)


def _money(
    session: Session, model_ids: list[uuid.UUID], now: datetime, ledger: Ledger | None
) -> dict[uuid.UUID, _Money]:
    """Per model: its stake now, career NMR and USD, and NMR over the last year and quarter."""
    career = career_payouts(session, model_ids)
    year = career_payouts(session, model_ids, since=now - LAST_YEAR)
    quarter = career_payouts(session, model_ids, since=now - LAST_QUARTER)
    stakes = {} if ledger is None else ledger.balances(session, Currency.NMR)
    return {
        model_id: _Money(
            stakes.get(stake(model_id), 0),
            *career[model_id],
            year[model_id][0],
            quarter[model_id][0],
        )
        for model_id in model_ids
    }


def model_leaderboard(
    session: Session,
    tournament: Tournament,
    now: datetime,
    viewer: Viewer,
    *,
    ledger: Ledger | None = None,
) -> list[Standing]:
    """Every model of the tournament, ranked; with the ledger, their stakes too."""
    models = session.execute(
        select(Model.id, Model.name, Account.username)
        .join(Account, Account.id == Model.account_id)
        .where(Model.tournament_id == tournament.id)
    ).all()
    scores = latest_scores(session, tournament, viewer)
    standings = _standings(scores, "model_id", {m.id: m.name for m in models}, tournament, now)
    owners = {m.id: m.username for m in models}
    money = _money(session, list(owners), now, ledger)
    return [
        replace(s, account=owners[s.model_id], **asdict(money[s.model_id]))
        for s in standings
        if s.model_id is not None
    ]


def account_leaderboard(
    session: Session,
    tournament: Tournament,
    now: datetime,
    viewer: Viewer,
    *,
    ledger: Ledger | None = None,
) -> list[Standing]:
    """Every account with a model in the tournament, over all its models' rounds; stake and
    career totals summed over its models."""
    owners = dict(
        session.execute(
            select(Model.id, Account.username)
            .join(Account, Account.id == Model.account_id)
            .where(Model.tournament_id == tournament.id)
        ).all()
    )
    scores = latest_scores(session, tournament, viewer)
    if not scores.empty:
        scores = scores.assign(account=scores["model_id"].map(owners))
    names = {name: name for name in sorted(set(owners.values()))}
    money = _money(session, list(owners), now, ledger)
    totals: dict[str, _Money] = {}
    for model_id, owner in owners.items():
        totals[owner] = totals.get(owner, NO_MONEY) + money[model_id]
    return [
        replace(s, **asdict(totals.get(s.name, NO_MONEY)))
        for s in _standings(scores, "account", names, tournament, now)
    ]


@dataclass(frozen=True)
class RoundRow:
    rank: int | None
    model_id: uuid.UUID
    model: str
    scores: dict[str, float]
    percentiles: dict[str, float]
    day: int
    late: bool
    duplicate: Duplicate | None = None


@dataclass(frozen=True)
class Duplicate:
    """A model whose submission was a near-duplicate of another's in the round."""

    of: str
    """The other model's name."""
    same_account: bool
    """Of its own account's model: it counted once (no stake at risk, no meta-model
    weight); else of another account's, flagged."""


def round_duplicates(session: Session, round_: Round) -> dict[uuid.UUID, Duplicate]:
    """The near-duplicates recorded when the round's meta model was fixed, by model."""
    recorded = session.scalar(select(MetaModel.duplicates).where(MetaModel.round_id == round_.id))
    if not recorded:
        return {}
    dropped = {uuid.UUID(a): uuid.UUID(b) for a, b in recorded.get("dropped", {}).items()}
    flagged = [(uuid.UUID(a), uuid.UUID(b)) for a, b, _ in recorded.get("flagged", [])]
    ids = set(dropped) | set(dropped.values()) | {k for pair in flagged for k in pair}
    if not ids:
        return {}
    names = {
        submission_id: (model_id, name)
        for submission_id, model_id, name in session.execute(
            select(Submission.id, Model.id, Model.name)
            .join(Model, Model.id == Submission.model_id)
            .where(Submission.id.in_(ids))
        )
    }
    found: dict[uuid.UUID, Duplicate] = {}
    for a, b in flagged:
        found[names[a][0]] = Duplicate(names[b][1], same_account=False)
        found[names[b][0]] = Duplicate(names[a][1], same_account=False)
    for copy, kept in dropped.items():
        found[names[copy][0]] = Duplicate(names[kept][1], same_account=True)
    return found


def round_table(session: Session, round_: Round, viewer: Viewer) -> list[RoundRow]:
    """A round's models ranked by their latest (final, once resolved) scores."""
    tournament = round_.tournament
    scores = latest_scores(session, tournament, viewer)
    if scores.empty:
        return []
    mine = scores[scores["round_id"] == round_.id]
    if mine.empty:
        return []
    metric, higher = rank_metric(tournament)
    wide = mine.pivot_table(index="model_id", columns="metric", values="value", dropna=False)
    late = mine.groupby("model_id")["late"].any()
    percentiles = wide.rank(pct=True, ascending=True)
    names = dict(
        session.execute(select(Model.id, Model.name).where(Model.id.in_(wide.index))).all()
    )
    duplicates = round_duplicates(session, round_)
    on_time = wide[~late.reindex(wide.index).to_numpy()]
    ranking = on_time[metric].rank(ascending=not higher, method="min") if metric in wide else None
    rows = [
        RoundRow(
            rank=None
            if ranking is None or model not in ranking.index or pd.isna(ranking[model])
            else int(ranking[model]),
            model_id=model,
            model=names[model],
            scores=wide.loc[model].dropna().to_dict(),
            percentiles=percentiles.loc[model].dropna().to_dict(),
            day=int(mine["day"].max()),
            late=bool(late[model]),
            duplicate=duplicates.get(model),
        )
        for model in wide.index
    ]
    return sorted(rows, key=lambda row: (row.rank is None, row.rank or 0, row.model))


@dataclass(frozen=True)
class DailyScore:
    round_id: uuid.UUID
    round: int
    submission_id: uuid.UUID
    metric: str
    day: int
    value: float | None
    percentile: float | None
    late: bool


def model_score_history(
    session: Session, model: Model, viewer: Viewer, *, metric: str | None = None
) -> list[DailyScore]:
    """Every stored score of `model`, day by day, with its percentile among the round's
    models on that day, by round then day."""
    query = (
        select(RoundScore, Round.number)
        .join(Round, Round.id == RoundScore.round_id)
        .where(
            RoundScore.round_id.in_(
                select(RoundScore.round_id).where(RoundScore.model_id == model.id)
            )
        )
    )
    if metric is not None:
        query = query.where(RoundScore.metric == metric)
    rows = [
        (
            score.round_id,
            number,
            score.model_id,
            score.submission_id,
            score.metric,
            score.day,
            score.value,
            score.late,
        )
        for score, number in session.execute(query).all()
        if score_visible(score.metric, viewer)
    ]
    if not rows:
        return []
    frame = pd.DataFrame(
        rows,
        columns=[
            "round_id",
            "round",
            "model_id",
            "submission_id",
            "metric",
            "day",
            "value",
            "late",
        ],
    )
    frame["percentile"] = frame.groupby(["round_id", "metric", "day"])["value"].rank(pct=True)
    own = frame[frame["model_id"] == model.id].sort_values(["round", "day", "metric"])
    return [
        DailyScore(
            round_id=row["round_id"],
            round=int(row["round"]),
            submission_id=row["submission_id"],
            metric=row["metric"],
            day=int(row["day"]),
            value=_number(row["value"]),
            percentile=_number(row["percentile"]),
            late=bool(row["late"]),
        )
        for row in own.to_dict("records")
    ]


def _number(value: Any) -> float | None:
    number = None if value is None else float(value)
    return None if number is None or math.isnan(number) else number
