"""A tournament at a glance (`tournament.overview`), on a scored round (fixture `world`):
the open round's time left by the clock given, the last resolved round and its results,
the leaderboard's top, and the meta model's CORR once its round is resolved."""

from __future__ import annotations

from datetime import timedelta

from crowdquant.db.models import Round
from crowdquant.db.session import transaction
from crowdquant.tournament.leaderboard import model_leaderboard
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.meta_model import meta_model_performance
from crowdquant.tournament.overview import tournament_overview
from crowdquant.tournament.rounds import FeedPublisher, open_round, time_left
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import Viewer

from .scored_round import DAY, World, market_feed, score


def test_time_left_counts_by_the_clock_given_and_stops_at_the_close(world: World) -> None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        closes = round_.close_time
        assert time_left(round_, closes - timedelta(minutes=5)) == timedelta(0)  # closed
        publisher = FeedPublisher(market_feed(), world.storage)
        world.clock.set(closes.replace(hour=12, minute=5) + DAY)  # the next day's round
        second = open_round(session, world.clock, get_tournament(session, 8), publisher)
        now = second.open_time + timedelta(seconds=30)
        assert time_left(second, now) == second.close_time - now
        assert time_left(second, second.close_time) == timedelta(0)
        assert time_left(second, second.open_time - timedelta(seconds=1)) == timedelta(0)


def test_the_overview_shows_the_meta_model_corr_once_its_round_resolves(world: World) -> None:
    source = FeedTargets(market_feed())
    score(world, source)
    world.clock.advance(40 * DAY)
    score(world, source)
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        scoring = tournament_overview(session, world.storage, tournament, world.clock.now())
        [performance] = meta_model_performance(session, world.storage, tournament, limit=1)
    assert scoring.open_round is None and scoring.time_left == timedelta(0)
    assert scoring.last_resolved is None and scoring.result is None
    assert scoring.meta_model_corr == []  # scoring, not resolved: not published yet

    with transaction(world.sessions) as session:
        RoundLifecycle(None, world.clock).resolve(session, session.get_one(Round, world.round_id))
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        now = world.clock.now()
        overview = tournament_overview(session, world.storage, tournament, now, leaders=3)
        board = model_leaderboard(session, tournament, now, Viewer.public())
        publisher = FeedPublisher(market_feed(), world.storage)
        second = open_round(session, world.clock, tournament, publisher)
        later = second.open_time + timedelta(hours=1)
        opened = tournament_overview(session, world.storage, tournament, later)
    assert overview.last_resolved is not None and overview.last_resolved.number == 1
    assert overview.result is None  # resolved without the books: no payouts recorded
    assert [line.name for line in overview.leaders] == [line.name for line in board[:3]]
    [corr] = overview.meta_model_corr
    assert corr.round == 1 and performance.corr is not None
    assert corr.corr is not None and abs(corr.corr - performance.corr) < 1e-12
    assert opened.open_round is not None and opened.open_round.number == 2
    assert opened.time_left == opened.open_round.close_time - later
