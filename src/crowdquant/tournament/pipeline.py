"""What a tournament's pipeline did on one day: numerapi's `pipeline_status(date)`.

A day's data is ready when a round opens on it (its live file is published then), scoring
starts and ends with the first and last scores computed that day, and a round resolves at
its result's time. Days are UTC dates.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import Round, RoundResult, RoundScore, RoundStatus, Tournament

# numerapi names the tournament of its client: "classic" for 8, "signals" for the others.
CLIENT_NAMES = {"classic": 8, "signals": 11}


@dataclass(frozen=True)
class PipelineStatus:
    day: date
    data_ready_at: datetime | None
    """When the first round opened that day published its live file."""
    started_at: datetime | None
    """When the first score of the day was computed."""
    scored_at: datetime | None
    """When the last score of the day was computed."""
    resolved_at: datetime | None
    """When the last round resolved that day was resolved."""
    is_scoring_day: bool
    """Scores were computed that day, or (today and later) a round waits to be scored."""


def tournament_number_of(tournaments: list[Tournament], name: str) -> int | None:
    """The number of the tournament named `name` (any case), or of numerapi's name for it."""
    wanted = name.strip().lower()
    for tournament in tournaments:
        if tournament.name.lower() == wanted:
            return tournament.number
    return CLIENT_NAMES.get(wanted)


def pipeline_status(
    session: Session, clock: Clock, tournament: Tournament, day: date
) -> PipelineStatus:
    start = datetime.combine(day, time(), tzinfo=UTC)
    end = start + timedelta(days=1)
    of_tournament = Round.tournament_id == tournament.id
    data_ready_at = session.scalar(
        select(func.min(Round.open_time)).where(
            of_tournament, Round.open_time >= start, Round.open_time < end
        )
    )
    started_at, scored_at = session.execute(
        select(func.min(RoundScore.computed_at), func.max(RoundScore.computed_at))
        .join(Round, Round.id == RoundScore.round_id)
        .where(of_tournament, RoundScore.computed_at >= start, RoundScore.computed_at < end)
    ).one()
    resolved_at = session.scalar(
        select(func.max(RoundResult.resolved_at))
        .join(Round, Round.id == RoundResult.round_id)
        .where(of_tournament, RoundResult.resolved_at >= start, RoundResult.resolved_at < end)
    )
    waiting = session.scalar(
        select(func.count(Round.id)).where(
            of_tournament, Round.status.in_([RoundStatus.CLOSED, RoundStatus.SCORING])
        )
    )
    is_scoring_day = bool(scored_at) or (day >= clock.now().date() and bool(waiting))
    return PipelineStatus(
        day=day,
        data_ready_at=data_ready_at,
        started_at=started_at,
        scored_at=scored_at,
        resolved_at=resolved_at,
        is_scoring_day=is_scoring_day,
    )
