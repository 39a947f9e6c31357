"""The meta model's performance per round, checked against numerai-tools on a scored round
(fixture `world`: five models, one late, in a closed round that is scoring)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt
from sqlalchemy import select

from crowdquant.db.models import FundBook, FundReturn, MetaModel, Round, RoundStatus
from crowdquant.db.session import transaction
from crowdquant.fund.rounds import equity_curve
from crowdquant.tournament.fund import update_fund
from crowdquant.tournament.meta_model import (
    NO_TARGETS,
    fund_equity,
    meta_model_performance,
    meta_model_rounds,
)
from crowdquant.tournament.scoring import (
    FeedTargets,
    days_recorded,
    stored_meta_model,
    stored_targets,
)
from crowdquant.tournament.tournaments import get_tournament

from .scored_round import DAY, World, market_feed, score

TOL = 1e-9


def test_a_round_without_targets_says_why(world: World) -> None:
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        assert meta_model_performance(session, world.storage, tournament, limit=5) == []
        assert meta_model_rounds(session, tournament) == 0
    assert score(world, FeedTargets(market_feed())) is not None  # day 0: the meta model fixed
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        [line] = meta_model_performance(session, world.storage, tournament, limit=5)
        assert meta_model_rounds(session, tournament) == 1
        assert fund_equity(session, tournament) == []
        with pytest.raises(ValueError, match="at least 1"):
            meta_model_performance(session, world.storage, tournament, limit=0)
    assert (line.round, line.status, line.weighting) == (1, RoundStatus.SCORING, "equal")
    assert line.contributors == 4  # the on-time submissions, not the latecomer
    assert (line.day, line.corr, line.corr_missing) == (0, None, NO_TARGETS)
    assert (line.best_model, line.best_corr, line.book) == (None, None, None)


def test_the_meta_model_corr_is_numerai_tools_on_the_stored_files(world: World) -> None:
    source = FeedTargets(market_feed())
    score(world, source)
    world.clock.advance(8 * DAY)
    assert score(world, source) is not None
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        tournament = round_.tournament
        day = days_recorded(session, round_)
        meta = stored_meta_model(session, world.storage, round_)
        targets = stored_targets(session, world.storage, round_, day)["target"]
        [line] = meta_model_performance(session, world.storage, tournament, limit=1)
    assert day >= 1 and meta is not None
    target = targets.astype(np.float64)
    expected = nt.numerai_corr(meta.to_frame("meta_model"), target)["meta_model"]
    assert line.day == day and line.corr_missing is None
    assert line.corr is not None and abs(line.corr - expected) < TOL

    # the best single on-time model that day, by numerai-tools too
    frame = pd.DataFrame(world.predictions)
    on_time = frame[[name for name in frame.columns if name not in world.late]]
    corrs = nt.numerai_corr(on_time, target)
    assert line.best_model == corrs.idxmax()
    assert line.best_corr is not None and abs(line.best_corr - corrs.max()) < TOL
    assert line.book is None  # the fund has not traded it yet

    # the fund trades the meta model's book, then books its days
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        assert update_fund(session, world.clock, world.storage, tournament, source)[0] == 1
        update_fund(session, world.clock, world.storage, tournament, source)
        book = session.scalars(select(FundBook)).one()
        nets = session.scalars(select(FundReturn.net_return).order_by(FundReturn.date)).all()
        curve = equity_curve(session, tournament)
        [line] = meta_model_performance(session, world.storage, tournament, limit=1)
        equity = fund_equity(session, tournament)
    assert line.book is not None
    assert (line.book.status, line.book.trade_date) == (book.status, book.trade_date)
    assert (line.book.gross, line.book.net, line.book.turnover) == (
        book.gross,
        book.net,
        book.turnover,
    )
    assert nets and line.book.days == len(nets)
    assert line.book.net_return is not None
    assert abs(line.book.net_return - (math.prod(1 + net for net in nets) - 1)) < 1e-12
    assert [value for _, value in equity] == curve.tolist()
    assert [day for day, _ in equity] == list(pd.DatetimeIndex(curve.index).date)


def test_a_meta_model_file_that_fails_its_checksum_is_reported(world: World) -> None:
    source = FeedTargets(market_feed())
    score(world, source)
    world.clock.advance(8 * DAY)
    score(world, source)
    with transaction(world.sessions) as session:
        key = session.scalars(select(MetaModel.storage_key)).one()
        world.storage.write(key, b"not the meta model")
        [line] = meta_model_performance(session, world.storage, get_tournament(session, 8), limit=3)
    assert line.day >= 1 and line.corr is None
    assert line.corr_missing is not None and "fails its checksum" in line.corr_missing
    assert line.best_model is not None  # the stored scores still say who did best
