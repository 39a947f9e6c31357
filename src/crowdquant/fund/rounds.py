"""The fund in the running tournament: a book per scored round, and its P&L day by day.

Once a round's meta model is fixed, `build_round_book` maps its ids back to real tickers
through the round's live era (operator only), takes the betas at the era's close and the
sectors, and builds a neutral book against the tournament's previous book
(`portfolio.build_portfolio`). The book trades `lag` market days after the era's close (when
its targets start counting) and is held until the tournament's next book trades.
`book_returns` then books each held market day the market has closed: the first pays the
trade's cost (`costs.CostModel`), later days drift with the returns. `equity_curve` is the
fund's compounded net return.

The tournament side drives both with the round's meta model and the tournament's
`FundRules` (its ``"fund"`` setting: ``{"limits": {...}, "costs": {...}}`` with the fields of
`PortfolioLimits` and `CostModel`). Functions work in the caller's transaction: they flush,
never commit. `plan_round_book` needs none: a caller can make a book (the slow part) before
its writing transaction and record it there (`record_book`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any, Protocol

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.data.feed import LiveEra
from crowdquant.data.panel import Panel
from crowdquant.db.models import FundBook, FundReturn, Round, Tournament
from crowdquant.fund.costs import CostModel
from crowdquant.fund.market import Market
from crowdquant.fund.pnl import book_pnl
from crowdquant.fund.portfolio import PortfolioLimits, build_portfolio, check_constraints


class RoundMarket(Protocol):
    """The operator's side of the market behind a tournament's live eras."""

    @property
    def lag(self) -> int: ...

    def live_era(self, round_: Round) -> LiveEra: ...

    def panel_known(self, now: datetime) -> Panel: ...

    def trading_day_after(self, day: date, offset: int) -> date: ...


class FundError(RuntimeError):
    """A book that cannot be built or booked (an operator's problem)."""


class FundRules(BaseModel):
    """The limits a tournament's books are built within, and the costs they trade at."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    limits: PortfolioLimits = PortfolioLimits()
    costs: CostModel = CostModel()


def _book_days(
    session: Session, tournament: Tournament
) -> list[tuple[uuid.UUID, date, date | None]]:
    """Each of the tournament's books in trading order: its id, its trade day and the last
    day booked (None before the first)."""
    rows = session.execute(
        select(FundBook.id, FundBook.trade_date, func.max(FundReturn.date))
        .join(Round, Round.id == FundBook.round_id)
        .outerjoin(FundReturn, FundReturn.book_id == FundBook.id)
        .where(Round.tournament_id == tournament.id)
        .group_by(FundBook.id, FundBook.trade_date, Round.number)
        .order_by(FundBook.trade_date, Round.number)
    )
    return [(book_id, trade_date, booked) for book_id, trade_date, booked in rows]


def last_book(session: Session, tournament: Tournament) -> FundBook | None:
    """The tournament's last book in trading order, if any: found by its id first, so that
    the sort carries no book's weights (thousands of rounds' worth)."""
    last = (
        select(FundBook.id)
        .join(Round, Round.id == FundBook.round_id)
        .where(Round.tournament_id == tournament.id)
        .order_by(FundBook.trade_date.desc(), Round.number.desc())
        .limit(1)
        .scalar_subquery()
    )
    return session.scalars(select(FundBook).where(FundBook.id == last)).first()


def _series(weights: dict[str, Any]) -> pd.Series:
    return pd.Series(weights, dtype=np.float64)


def plan_round_book(
    round_: Round,
    meta_model: pd.Series,
    market: RoundMarket,
    limits: PortfolioLimits,
    previous: FundBook | None,
    now: datetime,
) -> FundBook:
    """The book `round_`'s meta model (by id) asks for after `previous` (the tournament's
    book before it), created at `now` and not recorded: it needs no session, so the slow
    part (the portfolio) can be done before the transaction that records it. Raises
    FundError if it cannot be built within every hard constraint."""
    if round_.market_date is None:
        raise FundError(f"round {round_.number} does not record its market date")
    live = market.live_era(round_)
    tickers = live.tickers.astype(str)
    signal = pd.Series(meta_model.reindex(tickers.index).to_numpy(), index=tickers.to_numpy())
    betas = pd.Series(live.beta.to_numpy(np.float64), index=tickers.to_numpy())
    panel = market.panel_known(now)
    sectors = panel.sector.reindex(panel.close.columns).astype(str)
    weights_before = None if previous is None else _series(previous.weights)
    portfolio = build_portfolio(signal.dropna(), betas, sectors, weights_before, limits)
    universe = portfolio.weights.index
    problems = check_constraints(portfolio, betas.reindex(universe), sectors.reindex(universe))
    if problems:
        raise FundError(f"round {round_.number}'s book breaks its limits: {'; '.join(problems)}")
    held = portfolio.holdings()
    return FundBook(
        round_id=round_.id,
        rule=portfolio.version,
        status=portfolio.status,
        market_date=round_.market_date,
        trade_date=market.trading_day_after(round_.market_date, market.lag),
        weights={str(ticker): float(weight) for ticker, weight in held.items()},
        gross=portfolio.gross,
        net=portfolio.net,
        turnover=portfolio.turnover,
        notes="; ".join(portfolio.notes) or None,
        created_at=now,
    )


def build_round_book(
    session: Session,
    clock: Clock,
    round_: Round,
    meta_model: pd.Series,
    market: RoundMarket,
    limits: PortfolioLimits,
) -> FundBook:
    """Record the book `round_`'s meta model (by id) asks for after the tournament's last
    book (`plan_round_book`); raises FundError if it cannot be built within every hard
    constraint."""
    before = last_book(session, round_.tournament)
    return record_book(
        session, plan_round_book(round_, meta_model, market, limits, before, clock.now())
    )


def record_book(session: Session, book: FundBook) -> FundBook:
    """Record a book `plan_round_book` made."""
    session.add(book)
    session.flush()
    return book


def book_returns(
    session: Session, clock: Clock, tournament: Tournament, market: RoundMarket, costs: CostModel
) -> int:
    """Book every held market day closed by now and not booked yet; how many were added.

    Only books with days left to book are loaded and walked (from their trade day, as they
    drift), with the books before them, so a tick that finds nothing new costs one query of
    the books' days and the known panel's last date."""
    days = _book_days(session, tournament)
    if not days:
        return 0
    panel = market.panel_known(clock.now())
    last_day = pd.Timestamp(panel.dates[-1]).date()
    last_booked = {book_id: booked for book_id, _, booked in days if booked is not None}
    open_books = [
        (position, end)
        for position, (_, trade_date, booked) in enumerate(days)
        for end in [days[position + 1][1] if position + 1 < len(days) else last_day]
        if trade_date < min(end, last_day) and (booked is None or booked < min(end, last_day))
    ]
    if not open_books:
        return 0
    wanted = {days[p][0] for position, _ in open_books for p in (position - 1, position) if p >= 0}
    loaded = {
        book.id: book for book in session.scalars(select(FundBook).where(FundBook.id.in_(wanted)))
    }
    windows = [
        (loaded[days[position][0]], loaded[days[position - 1][0]] if position else None, end)
        for position, end in open_books
    ]
    prices = Market(panel)
    added = 0
    for book, before, end in windows:
        first = int(panel.dates.searchsorted(pd.Timestamp(book.trade_date), side="right"))
        stop = int(panel.dates.searchsorted(pd.Timestamp(end), side="right"))
        weights = _series(book.weights)
        previous = None if before is None else _series(before.weights)
        done = last_booked.get(book.id)
        for today in range(first, stop):
            result = book_pnl(
                weights, prices.returns(today - 1, today).fillna(0.0), costs, previous
            )
            day = pd.Timestamp(panel.dates[today]).date()
            if done is None or day > done:
                session.add(
                    FundReturn(
                        book_id=book.id,
                        date=day,
                        gross_return=result.gross,
                        cost=result.cost,
                        net_return=result.net,
                        cost_model=costs.version,
                        booked_at=clock.now(),
                    )
                )
                added += 1
            weights = result.drifted
            previous = weights  # held on: nothing traded
    session.flush()
    return added


def equity_curve(session: Session, tournament: Tournament) -> pd.Series:
    """The fund's equity by market day, starting from 1 (compounded net returns)."""
    rows = session.execute(
        select(FundReturn.date, FundReturn.net_return)
        .join(FundBook, FundBook.id == FundReturn.book_id)
        .join(Round, Round.id == FundBook.round_id)
        .where(Round.tournament_id == tournament.id)
        .order_by(FundReturn.date)
    ).all()
    net = pd.Series([value for _, value in rows], index=pd.DatetimeIndex([d for d, _ in rows]))
    return (1.0 + net).cumprod().rename("equity")
