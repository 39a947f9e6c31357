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
never commit.
"""

from __future__ import annotations

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


def tournament_books(session: Session, tournament: Tournament) -> list[FundBook]:
    """The tournament's books in trading order."""
    return list(
        session.scalars(
            select(FundBook)
            .join(Round, Round.id == FundBook.round_id)
            .where(Round.tournament_id == tournament.id)
            .order_by(FundBook.trade_date, Round.number)
        )
    )


def _series(weights: dict[str, Any]) -> pd.Series:
    return pd.Series(weights, dtype=np.float64)


def build_round_book(
    session: Session,
    clock: Clock,
    round_: Round,
    meta_model: pd.Series,
    market: RoundMarket,
    limits: PortfolioLimits,
) -> FundBook:
    """Record the book `round_`'s meta model (by id) asks for; raises FundError if it
    cannot be built within every hard constraint."""
    if round_.market_date is None:
        raise FundError(f"round {round_.number} does not record its market date")
    live = market.live_era(round_)
    tickers = live.tickers.astype(str)
    signal = pd.Series(meta_model.reindex(tickers.index).to_numpy(), index=tickers.to_numpy())
    betas = pd.Series(live.beta.to_numpy(np.float64), index=tickers.to_numpy())
    panel = market.panel_known(clock.now())
    sectors = panel.sector.reindex(panel.close.columns).astype(str)
    books = tournament_books(session, round_.tournament)
    previous = _series(books[-1].weights) if books else None
    portfolio = build_portfolio(signal.dropna(), betas, sectors, previous, limits)
    universe = portfolio.weights.index
    problems = check_constraints(portfolio, betas.reindex(universe), sectors.reindex(universe))
    if problems:
        raise FundError(f"round {round_.number}'s book breaks its limits: {'; '.join(problems)}")
    held = portfolio.holdings()
    book = FundBook(
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
        created_at=clock.now(),
    )
    session.add(book)
    session.flush()
    return book


def book_returns(
    session: Session, clock: Clock, tournament: Tournament, market: RoundMarket, costs: CostModel
) -> int:
    """Book every held market day closed by now and not booked yet; how many were added.

    Only books with days left to book are walked (from their trade day, as they drift), so
    a tick that finds nothing new costs two queries and the known panel's last date."""
    books = tournament_books(session, tournament)
    if not books:
        return 0
    panel = market.panel_known(clock.now())
    last_day = pd.Timestamp(panel.dates[-1]).date()
    last_booked = {
        book_id: day
        for book_id, day in session.execute(
            select(FundReturn.book_id, func.max(FundReturn.date))
            .where(FundReturn.book_id.in_([book.id for book in books]))
            .group_by(FundReturn.book_id)
        )
    }
    windows = [
        (book, books[position - 1] if position else None, end)
        for position, book in enumerate(books)
        for end in [books[position + 1].trade_date if position + 1 < len(books) else last_day]
        if book.trade_date < min(end, last_day)
        and (book.id not in last_booked or last_booked[book.id] < min(end, last_day))
    ]
    if not windows:
        return 0
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
