"""The tournament drives its fund: a book per round whose meta model is fixed, then P&L.

The fund (`fund.rounds`) knows nothing of tournaments' settings or stored meta models: this
module hands it each round's meta model and the tournament's ``"fund"`` setting. The
scheduler makes the books due in a reading transaction (`plan_books`), then records them in
a writing one (`update_fund`), which builds afresh any book whose plan no longer holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import FundBook, MetaModel, Round, Tournament
from crowdquant.faults import crash_point
from crowdquant.fund.rounds import (
    FundError,
    RoundMarket,
    book_returns,
    build_round_book,
    last_book,
    plan_round_book,
    record_book,
)
from crowdquant.storage import FileStorage
from crowdquant.tournament.scoring import stored_meta_model
from crowdquant.tournament.settings_model import settings_of


@dataclass(frozen=True)
class PlannedBook:
    """A round's book made in a reading transaction (`plan_books`), and the round whose book
    it follows (None: the tournament's first)."""

    book: FundBook
    after: uuid.UUID | None


def plan_books(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    tournament: Tournament,
    market: RoundMarket,
) -> dict[uuid.UUID, PlannedBook]:
    """The books `update_fund` would build now, by round, each after the one before: made in
    a reading transaction, so that the writing one only records them (building a portfolio
    is the slow part, and a writer on SQLite holds every other writer back). Planning stops
    at a book that cannot be built: `update_fund` builds it again, and says why."""
    rounds = _rounds_without_book(session, tournament)
    if not rounds:  # the common case: one query
        return {}
    limits = settings_of(tournament).fund.limits
    planned: dict[uuid.UUID, PlannedBook] = {}
    previous = last_book(session, tournament)
    for round_ in rounds:
        meta = stored_meta_model(session, storage, round_)
        if meta is None:
            continue
        try:
            book = plan_round_book(round_, meta, market, limits, previous, clock.now())
        except FundError:
            break
        planned[round_.id] = PlannedBook(book, None if previous is None else previous.round_id)
        previous = book
    return planned


def update_fund(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    tournament: Tournament,
    market: RoundMarket,
    planned: Mapping[uuid.UUID, PlannedBook] | None = None,
) -> tuple[int, int]:
    """Build the books of rounds whose meta model is fixed, then book returns; the
    numbers of (books, days) added. A round's `planned` book (`plan_books`) is recorded as
    it is if it follows the book that is last now, as when it was planned (books never
    change); otherwise the book is built here."""
    rules = settings_of(tournament).fund
    built = 0
    for round_ in _rounds_without_book(session, tournament):
        plan = (planned or {}).get(round_.id)
        before = last_book(session, tournament) if plan is not None else None
        if plan is not None and plan.after == (None if before is None else before.round_id):
            record_book(session, plan.book)
            built += 1
            continue
        meta = stored_meta_model(session, storage, round_)
        if meta is None:
            continue
        build_round_book(session, clock, round_, meta, market, rules.limits)
        built += 1
    days = book_returns(session, clock, tournament, market, rules.costs)
    if built or days:
        crash_point("fund:before-commit")
    return built, days


def _rounds_without_book(session: Session, tournament: Tournament) -> list[Round]:
    """The tournament's rounds with a fixed meta model and no book yet, in order."""
    return list(
        session.scalars(
            select(Round)
            .where(
                Round.tournament_id == tournament.id,
                Round.id.in_(select(MetaModel.round_id)),
                Round.id.not_in(select(FundBook.round_id)),
            )
            .order_by(Round.number)
        )
    )
