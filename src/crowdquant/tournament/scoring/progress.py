"""How far each scoring round's stored scores go, told by one cheap query.

`scoring_rounds` counts, for every scoring round of a tournament at once, its valid
submissions, its stored scores and its recorded days of targets (`ScoringProgress`). A late
upload, scores added or deleted and targets recorded each change a count (a submission's
status is fixed when it is recorded), so while a round's counts stay as a pass left them,
its stored scores are still what that pass saw. `ScoringMemory` keeps, per round, the
counts a pass left and the day its scores were complete through: a round whose counts are
unchanged and whose market revealed no new day needs no pass, and one that only got new days
needs no search for missing scores (`score_round`'s `complete`). It is memory only: a fresh
process looks at every round in full once.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.db.models import (
    Round,
    RoundScore,
    RoundStatus,
    RoundTargets,
    Submission,
    SubmissionStatus,
)


@dataclass(frozen=True)
class ScoringProgress:
    """What a round's scoring rests on, counted: any change means a new look."""

    submissions: int
    """Valid submissions (a late one adds to them)."""
    scores: int
    """Stored score rows."""
    target_days: int
    """Days of targets recorded."""


@dataclass(frozen=True)
class Complete:
    """A round's scores are stored for every scored submission on days 0…`day`, and its
    targets for days 1…`day`, as of `progress`."""

    progress: ScoringProgress
    day: int


def scoring_rounds(
    session: Session, tournament_id: uuid.UUID
) -> list[tuple[Round, ScoringProgress]]:
    """Every scoring round of the tournament, by number, with its counts (one query)."""
    valid = (
        select(func.count())
        .where(Submission.round_id == Round.id, Submission.status == SubmissionStatus.VALID)
        .correlate(Round)
        .scalar_subquery()
    )
    scores = (
        select(func.count())
        .select_from(RoundScore)
        .where(RoundScore.round_id == Round.id)
        .correlate(Round)
        .scalar_subquery()
    )
    targets = (
        select(func.count())
        .select_from(RoundTargets)
        .where(RoundTargets.round_id == Round.id)
        .correlate(Round)
        .scalar_subquery()
    )
    rows = session.execute(
        select(Round, valid, scores, targets)
        .where(Round.tournament_id == tournament_id, Round.status == RoundStatus.SCORING)
        .order_by(Round.number)
    )
    return [
        (round_, ScoringProgress(int(n_valid), int(n_scores), int(n_targets)))
        for round_, n_valid, n_scores, n_targets in rows
    ]


class ScoringMemory:
    """Per round, what the last committed pass left (`Complete`); at most `rounds` rounds,
    the least recently scored forgotten first."""

    def __init__(self, rounds: int = 256) -> None:
        self.rounds = rounds
        self._complete: OrderedDict[uuid.UUID, Complete] = OrderedDict()

    def complete(self, round_id: uuid.UUID, progress: ScoringProgress) -> Complete | None:
        """What is known complete of the round, if its counts are still those remembered."""
        kept = self._complete.get(round_id)
        if kept is None or kept.progress != progress:
            return None
        self._complete.move_to_end(round_id)
        return kept

    def remember(self, round_id: uuid.UUID, complete: Complete) -> None:
        """Call only once the pass that left `complete` has committed."""
        self._complete[round_id] = complete
        self._complete.move_to_end(round_id)
        while len(self._complete) > self.rounds:
            self._complete.popitem(last=False)

    def forget(self, round_id: uuid.UUID) -> None:
        self._complete.pop(round_id, None)
