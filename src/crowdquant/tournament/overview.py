"""A tournament at a glance, as the public sees it (the site's front page).

`tournament_overview` reads, inside the caller's transaction: the open round and the time
it has left by the tournament's clock (`rounds.time_left`), the last resolved round and its
results, the top of the model leaderboard, and the meta model's CORR on each resolved
round's last scoring day (`meta_model.meta_model_corr`, published once a round is resolved:
`visibility.meta_model_score_visible`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import MetaModel, Round, RoundResult, RoundStatus, Tournament
from crowdquant.ledger import Ledger
from crowdquant.storage import FileStorage
from crowdquant.tournament.leaderboard import Standing, model_leaderboard
from crowdquant.tournament.meta_model import meta_model_corr
from crowdquant.tournament.resolution import round_result
from crowdquant.tournament.rounds import current_round, is_open, list_rounds, time_left
from crowdquant.tournament.scoring import days_recorded
from crowdquant.tournament.visibility import Viewer, meta_model_score_visible

LEADERS = 10
"""Models shown from the top of the leaderboard."""
CORR_ROUNDS = 20
"""Resolved rounds whose meta model's CORR is shown (each reads two stored files)."""


@dataclass(frozen=True)
class MetaModelCorr:
    round: int
    corr: float | None
    """None when it cannot be computed (no targets, a missing file)."""


@dataclass(frozen=True)
class Overview:
    tournament: Tournament
    open_round: Round | None
    time_left: timedelta
    """How long the open round still takes submissions (zero without one)."""
    last_resolved: Round | None
    result: RoundResult | None
    """The last resolved round's results (None while its payouts are not recorded)."""
    leaders: list[Standing]
    meta_model_corr: list[MetaModelCorr]
    """Oldest first."""


def tournament_overview(
    session: Session,
    storage: FileStorage,
    tournament: Tournament,
    now: datetime,
    *,
    ledger: Ledger | None = None,
    leaders: int = LEADERS,
    rounds: int = CORR_ROUNDS,
) -> Overview:
    """The tournament at `now` (its clock's time), as the public sees it."""
    newest = current_round(session, tournament)
    open_round = newest if newest is not None and is_open(newest, now) else None
    resolved = list_rounds(session, tournament, [RoundStatus.RESOLVED])
    last = resolved[-1] if resolved else None
    standings = model_leaderboard(session, tournament, now, Viewer.public(), ledger=ledger)
    return Overview(
        tournament=tournament,
        open_round=open_round,
        time_left=time_left(open_round, now) if open_round is not None else timedelta(0),
        last_resolved=last,
        result=round_result(session, last) if last is not None else None,
        leaders=standings[:leaders],
        meta_model_corr=_meta_model_corr(session, storage, tournament, rounds),
    )


def _meta_model_corr(
    session: Session, storage: FileStorage, tournament: Tournament, limit: int
) -> list[MetaModelCorr]:
    """The meta model's CORR on the last day scored, for the newest `limit` resolved rounds
    that have one, oldest first."""
    with_meta = session.scalars(
        select(Round)
        .join(MetaModel, MetaModel.round_id == Round.id)
        .where(Round.tournament_id == tournament.id, Round.status == RoundStatus.RESOLVED)
        .order_by(Round.number.desc())
        .limit(limit)
    ).all()
    found = []
    for round_ in reversed(with_meta):
        if not meta_model_score_visible(round_):  # pragma: no cover - resolved rounds only
            continue
        corr, _ = meta_model_corr(session, storage, round_, days_recorded(session, round_))
        found.append(MetaModelCorr(round_.number, corr))
    return found
