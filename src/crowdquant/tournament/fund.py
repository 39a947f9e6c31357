"""The tournament drives its fund: a book per round whose meta model is fixed, then P&L.

The fund (`fund.rounds`) knows nothing of tournaments' settings or stored meta models: this
module hands it each round's meta model and the tournament's ``"fund"`` setting.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import FundBook, MetaModel, Round, Tournament
from crowdquant.faults import crash_point
from crowdquant.fund.rounds import RoundMarket, book_returns, build_round_book
from crowdquant.storage import FileStorage
from crowdquant.tournament.scoring import stored_meta_model
from crowdquant.tournament.settings_model import settings_of


def update_fund(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    tournament: Tournament,
    market: RoundMarket,
) -> tuple[int, int]:
    """Build the books of rounds whose meta model is fixed, then book returns; the
    numbers of (books, days) added."""
    rules = settings_of(tournament).fund
    rounds = session.scalars(  # only rounds with a fixed meta model and no book yet
        select(Round)
        .where(
            Round.tournament_id == tournament.id,
            Round.id.in_(select(MetaModel.round_id)),
            Round.id.not_in(select(FundBook.round_id)),
        )
        .order_by(Round.number)
    ).all()
    built = 0
    for round_ in rounds:
        meta = stored_meta_model(session, storage, round_)
        if meta is None:
            continue
        build_round_book(session, clock, round_, meta, market, rules.limits)
        built += 1
    days = book_returns(session, clock, tournament, market, rules.costs)
    if built or days:
        crash_point("fund:before-commit")
    return built, days
