"""What some accounts did in a tournament and what came of it, as it happens: their uploads,
the stakes their models put at risk at each close, their daily scores and their payouts.

The demo tells a person's own activity apart from the bots' with it: `activity_since` reads
every such record of the tournament's models since a moment, leaving out some accounts.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import (
    Account,
    Model,
    Round,
    RoundPayout,
    RoundScore,
    RoundStake,
    Submission,
    SubmissionStatus,
    Tournament,
)


@dataclass(frozen=True)
class Uploaded:
    id: uuid.UUID
    at: datetime
    username: str
    model: str
    round: int
    late: bool
    status: SubmissionStatus


@dataclass(frozen=True)
class AtRisk:
    """A model's stake frozen at a round's close."""

    id: uuid.UUID
    at: datetime
    username: str
    model: str
    round: int
    nmr: int


@dataclass(frozen=True)
class Scored:
    """A model's scores of one round on one scoring day, by metric."""

    id: tuple[uuid.UUID, uuid.UUID, int]  # the round, the model, the day
    at: datetime
    username: str
    model: str
    round: int
    day: int
    values: dict[str, float | None]


@dataclass(frozen=True)
class Paid:
    """A model's payout at a round's resolution (negative: burned)."""

    id: uuid.UUID
    at: datetime
    username: str
    model: str
    round: int
    nmr: int
    at_risk: int


Activity = Uploaded | AtRisk | Scored | Paid


def activity_since(
    session: Session, tournament: Tournament, since: datetime, leaving_out: Collection[str]
) -> list[Activity]:
    """The uploads, stakes at risk, scores and payouts of the tournament's models recorded
    from `since` on, of every account but those named in `leaving_out`, oldest first."""
    owners = (
        select(Model.id, Account.username, Model.name)
        .join(Account, Account.id == Model.account_id)
        .where(Model.tournament_id == tournament.id, Account.username.not_in(list(leaving_out)))
    )
    names = {model_id: (username, name) for model_id, username, name in session.execute(owners)}
    if not names:
        return []
    ids = list(names)
    found: list[Activity] = []
    for submission, number in session.execute(
        select(Submission, Round.number)
        .join(Round, Round.id == Submission.round_id)
        .where(Submission.model_id.in_(ids), Submission.created_at >= since)
    ):
        found.append(
            Uploaded(
                submission.id,
                submission.created_at,
                *names[submission.model_id],
                number,
                submission.late,
                submission.status,
            )
        )
    for stake, number in session.execute(
        select(RoundStake, Round.number)
        .join(Round, Round.id == RoundStake.round_id)
        .where(RoundStake.model_id.in_(ids), RoundStake.staked_at >= since, RoundStake.at_risk > 0)
    ):
        found.append(
            AtRisk(stake.id, stake.staked_at, *names[stake.model_id], number, stake.at_risk)
        )
    days: dict[tuple[uuid.UUID, uuid.UUID, int], Scored] = {}
    for score, number in session.execute(
        select(RoundScore, Round.number)
        .join(Round, Round.id == RoundScore.round_id)
        .where(RoundScore.model_id.in_(ids), RoundScore.computed_at >= since)
        .order_by(RoundScore.metric)
    ):
        key = (score.round_id, score.model_id, score.day)
        if key not in days:
            days[key] = Scored(
                key,
                score.computed_at,
                *names[score.model_id],
                number,
                score.day,
                {},
            )
        days[key].values[score.metric] = score.value
    found.extend(days.values())
    for payout, number in session.execute(
        select(RoundPayout, Round.number)
        .join(Round, Round.id == RoundPayout.round_id)
        .where(RoundPayout.model_id.in_(ids), RoundPayout.resolved_at >= since)
    ):
        found.append(
            Paid(
                payout.id,
                payout.resolved_at,
                *names[payout.model_id],
                number,
                payout.nmr,
                payout.at_risk,
            )
        )
    return sorted(found, key=lambda record: record.at)
