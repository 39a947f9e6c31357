"""The fund in the running tournament: a book from a round's meta model, and its daily P&L."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import FundBook, FundReturn, Round
from crowdquant.db.session import transaction
from crowdquant.fund.costs import CostModel
from crowdquant.fund.portfolio import PortfolioLimits
from crowdquant.fund.rounds import FundError, equity_curve, last_book
from crowdquant.tournament.fund import PlannedBook, plan_books, update_fund
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.scoring import FeedTargets, stored_meta_model

from ..tournament.scored_round import DAY, World, market_feed, score, scored_world

COSTS = CostModel()
HOUR = timedelta(hours=1)


@pytest.fixture
def world(sessions: sessionmaker[Session], tmp_path: Path) -> World:
    world = scored_world(sessions, tmp_path)
    score(world, FeedTargets(market_feed()))  # fixes the meta model
    return world


def _update(world: World) -> tuple[int, int]:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        return update_fund(
            session, world.clock, world.storage, round_.tournament, FeedTargets(market_feed())
        )


def _built(world: World, planned: dict[uuid.UUID, PlannedBook] | None) -> FundBook:
    """The book `update_fund` records for the world's round with `planned`, rolled back."""
    with world.sessions() as session:
        round_ = session.get_one(Round, world.round_id)
        market = FeedTargets(market_feed())
        assert update_fund(
            session, world.clock, world.storage, round_.tournament, market, planned
        ) == (1, 0)
        book = session.scalars(select(FundBook)).one()
        session.expunge(book)
        session.rollback()
    return book


def _planned(world: World) -> dict[uuid.UUID, PlannedBook]:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        market = FeedTargets(market_feed())
        return plan_books(session, world.clock, world.storage, round_.tournament, market)


def test_a_book_planned_before_the_writing_transaction_is_recorded_as_planned(
    world: World,
) -> None:
    planned = _planned(world)
    assert list(planned) == [world.round_id]
    assert planned[world.round_id].after is None  # the tournament's first book
    built_here = _built(world, None)
    recorded = _built(world, planned)
    assert recorded is planned[world.round_id].book  # recorded, not built again
    assert recorded.weights == built_here.weights
    assert (recorded.gross, recorded.turnover) == (built_here.gross, built_here.turnover)


def test_a_book_planned_after_another_book_than_the_last_is_built_again(world: World) -> None:
    plan = _planned(world)[world.round_id]
    plan.book.weights = {"planned": 1.0}  # tells whether the plan was recorded
    stale = {world.round_id: replace(plan, after=uuid.uuid4())}  # another book came since
    recorded = _built(world, stale)
    assert recorded is not plan.book
    assert recorded.weights == _built(world, None).weights


def test_a_book_that_cannot_be_built_is_not_planned_and_the_write_says_why(world: World) -> None:
    with transaction(world.sessions) as session:
        session.get_one(Round, world.round_id).market_date = None
    assert _planned(world) == {}
    with pytest.raises(FundError, match="does not record its market date"):
        _update(world)


def test_a_round_gets_one_neutral_book_from_its_meta_model(world: World) -> None:
    assert _update(world) == (1, 0)  # traded two market days after the era: nothing held yet
    assert _update(world) == (0, 0)
    limits = PortfolioLimits()
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        book = session.scalars(select(FundBook)).one()
        meta = stored_meta_model(session, world.storage, round_)
        assert meta is not None and round_.market_date is not None
        live = market_feed().live_era(
            round_.number, round_.live_era, pd.Timestamp(round_.market_date)
        )
        panel = market_feed().market.panel_through(pd.Timestamp(round_.market_date))
    weights = pd.Series(book.weights)
    assert book.market_date == round_.market_date
    assert book.trade_date == (pd.Timestamp(book.market_date) + pd.offsets.BDay(2)).date()
    # the hard constraints, checked here from the operator's own data
    beta = pd.Series(live.beta.to_numpy(), index=live.tickers.to_numpy())
    sector = panel.sector.astype(str)
    assert abs(weights.sum()) < 1e-6
    assert abs((weights * beta.reindex(weights.index)).sum()) < 1e-6
    assert (weights.groupby(sector.reindex(weights.index)).sum().abs() < 1e-6).all()
    assert weights.abs().max() <= limits.max_position + 1e-9
    assert weights.abs().sum() <= limits.max_gross + 1e-9
    # and the book leans the meta model's way: long its top half, short its bottom half
    signal = pd.Series(meta.reindex(live.tickers.index).to_numpy(), index=live.tickers.to_numpy())
    assert np.corrcoef(weights, signal.reindex(weights.index))[0, 1] > 0.5


def test_returns_are_booked_day_by_day_with_the_trading_cost_first(world: World) -> None:
    _update(world)
    world.clock.advance(8 * DAY)
    books, days = _update(world)
    assert books == 0 and days >= 4
    assert _update(world) == (0, 0)  # booked once
    with transaction(world.sessions) as session:
        book = session.scalars(select(FundBook)).one()
        returns = list(session.scalars(select(FundReturn).order_by(FundReturn.date)))
        round_ = session.get_one(Round, world.round_id)
        curve = equity_curve(session, round_.tournament)
    panel = market_feed().market.panel_through(pd.Timestamp(returns[-1].date))
    close = panel.close
    weights = pd.Series(book.weights)
    first = returns[0]
    day = close.index.get_loc(pd.Timestamp(first.date))
    moved = (close.iloc[day] / close.iloc[day - 1] - 1.0).reindex(weights.index)
    assert first.date > book.trade_date
    assert first.gross_return == pytest.approx(float((weights * moved).sum()))
    costs = CostModel()
    assert first.cost == pytest.approx(weights.abs().sum() * costs.bps_per_trade / 1e4)
    assert all(later.cost == 0.0 for later in returns[1:])
    expected = np.cumprod([1.0 + r.net_return for r in returns])
    np.testing.assert_allclose(curve.to_numpy(), expected)


def test_a_later_book_trades_from_the_book_before_it_which_stops_there(world: World) -> None:
    _update(world)
    world.clock.advance(8 * DAY)
    _update(world)
    world.clock.advance(23 * HOUR)  # into the next round's window
    with transaction(world.sessions) as session:
        first = session.scalars(select(FundBook)).one()
        first_booked = session.scalar(select(func.max(FundReturn.date)))
        tournament = session.get_one(Round, world.round_id).tournament
        later = open_round(
            session, world.clock, tournament, FeedPublisher(market_feed(), world.storage)
        )
        trade = (pd.Timestamp(first_booked) + pd.offsets.BDay(1)).date()
        opposite = {ticker: -weight for ticker, weight in first.weights.items()}
        session.add(
            FundBook(
                round_id=later.id,
                rule=first.rule,
                status=first.status,
                market_date=trade,
                trade_date=trade,
                weights=opposite,
                gross=first.gross,
                net=-first.net,
                turnover=2 * first.gross,
                notes=None,
                created_at=world.clock.now(),
            )
        )
        first_id = first.id
        gross = sum(abs(weight) for weight in first.weights.values())
    world.clock.advance(5 * DAY)
    books, days = _update(world)
    assert books == 0 and days >= 2
    assert _update(world) == (0, 0)
    with transaction(world.sessions) as session:
        returns = list(session.scalars(select(FundReturn).order_by(FundReturn.date)))
    of_first = [r for r in returns if r.book_id == first_id]
    of_later = [r for r in returns if r.book_id != first_id]
    assert max(r.date for r in of_first) == trade  # held until the later book trades
    assert min(r.date for r in of_later) > trade
    # traded from the book before (not from cash): twice its gross, once
    assert of_later[0].cost == pytest.approx(2 * gross * COSTS.bps_per_trade / 1e4)
    assert all(r.cost == 0.0 for r in of_later[1:])


def test_the_scheduler_runs_the_fund_beside_scoring(world: World) -> None:
    source = FeedTargets(market_feed())
    scheduler = Scheduler(
        world.sessions,
        world.clock,
        {8: TournamentRuntime(targets=source, market=source)},
        storage=world.storage,
    )
    world.clock.advance(8 * DAY)
    happened = [str(event) for event in scheduler.tick()]
    assert any(line.startswith("tournament 8's fund: 1 new book(s)") for line in happened)


def test_the_last_book_is_the_last_traded_and_of_two_on_one_day_the_later_rounds(
    world: World,
) -> None:
    _update(world)  # the first round's book
    world.clock.advance(8 * DAY + 23 * HOUR)  # into the next round's window
    with transaction(world.sessions) as session:
        first = session.scalars(select(FundBook)).one()
        tournament = session.get_one(Round, world.round_id).tournament
        assert last_book(session, tournament) is first
        later = open_round(
            session, world.clock, tournament, FeedPublisher(market_feed(), world.storage)
        )
        fields = {
            column.key: getattr(first, column.key)
            for column in FundBook.__table__.columns
            if column.key not in ("id", "round_id")
        }
        second = FundBook(**fields, round_id=later.id)  # traded the same day
        session.add(second)
        session.flush()
        assert last_book(session, tournament) is second
        first.trade_date += timedelta(days=1)  # the first now trades last
        session.flush()
        assert last_book(session, tournament) is first
