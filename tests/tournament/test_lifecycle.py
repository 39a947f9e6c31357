"""The round lifecycle: each step once, in order, moving the stakes in its transaction."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import Cadence, Round, RoundStake, RoundStatus, Rules, StakeChangeKind
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.resolution import round_result
from crowdquant.tournament.rounds import FeedPublisher, RoundStateError, open_round
from crowdquant.tournament.staking import change_stake, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from .live_market import TUESDAY_NOON, local_storage, market_feed
from .scored_round import CHEAP, upload

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TUESDAY_NOON + timedelta(minutes=5))


@pytest.fixture
def publisher(tmp_path: Path) -> FeedPublisher:
    return FeedPublisher(market_feed(), local_storage(tmp_path / "files"))


def open_now(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> Round:
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "t8", Rules.CLASSIC, Cadence.DAILY, "v1")
        return open_round(session, clock, get_tournament(session, 8), publisher)


def test_the_order_of_statuses() -> None:
    open_, closed, scoring, resolved = RoundLifecycle.ORDER
    assert RoundLifecycle.ORDER == (
        RoundStatus.OPEN,
        RoundStatus.CLOSED,
        RoundStatus.SCORING,
        RoundStatus.RESOLVED,
    )
    assert [RoundLifecycle.next_status(status) for status in RoundLifecycle.ORDER] == [
        closed,
        scoring,
        resolved,
        None,
    ]
    assert [RoundLifecycle.previous_status(status) for status in RoundLifecycle.ORDER] == [
        None,
        open_,
        closed,
        scoring,
    ]


def test_transitions_go_forward_once(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    round_ = open_now(sessions, clock, publisher)
    lifecycle = RoundLifecycle(None, clock)
    with transaction(sessions) as session:
        with pytest.raises(
            RoundStateError, match="round 1 of tournament 8 is open: it cannot become resolved"
        ):
            lifecycle.resolve(session, round_)
        with pytest.raises(RoundStateError, match="is open: it cannot become scoring") as raised:
            lifecycle.start_scoring(session, round_)
        assert (raised.value.current, raised.value.wanted) == (
            RoundStatus.OPEN,
            RoundStatus.SCORING,
        )
        assert lifecycle.close(session, round_) is True
        assert lifecycle.close(session, round_) is False  # a retry does nothing
        assert lifecycle.start_scoring(session, round_) is True
        with pytest.raises(RoundStateError, match="is scoring: it cannot become closed"):
            lifecycle.close(session, round_)
        assert lifecycle.resolve(session, round_) is True
        assert lifecycle.resolve(session, round_) is False
        assert round_.status is RoundStatus.RESOLVED
    with transaction(sessions) as session:
        stored = session.get_one(Round, round_.id)
        assert stored.status is RoundStatus.RESOLVED


def test_move_to_takes_the_step_that_reaches_a_status(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    round_ = open_now(sessions, clock, publisher)
    lifecycle = RoundLifecycle(None, clock)
    with transaction(sessions) as session:
        with pytest.raises(ValueError, match="no step of the lifecycle reaches open"):
            lifecycle.move_to(session, round_, RoundStatus.OPEN)
        for status in RoundLifecycle.ORDER[1:]:
            assert lifecycle.move_to(session, round_, status) is True
            assert round_.status is status
            assert lifecycle.move_to(session, round_, status) is False


def test_a_transition_from_a_stale_copy_applies_once(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    open_now(sessions, clock, publisher)
    lifecycle = RoundLifecycle(None, clock)
    with sessions() as mine, sessions() as theirs:
        with mine.begin():
            stale = mine.scalars(select(Round)).one()
        with theirs.begin():
            assert lifecycle.close(theirs, theirs.scalars(select(Round)).one()) is True
        assert stale.status is RoundStatus.OPEN
        with mine.begin():
            assert lifecycle.close(mine, stale) is False  # the other worker got there first
            assert mine.get_one(Round, stale.id).status is RoundStatus.CLOSED
            with pytest.raises(RoundStateError, match="is closed: it cannot become resolved"):
                lifecycle.resolve(mine, stale)


def test_what_the_clock_makes_due() -> None:
    start = TUESDAY_NOON
    round_ = Round(
        number=1,
        status=RoundStatus.OPEN,
        open_time=start,
        close_staking_time=start + HOUR,
        close_time=start + HOUR,
        resolve_time=start + 31 * DAY,
    )
    assert RoundLifecycle.due(round_, start + HOUR - timedelta(seconds=1)) is None
    assert RoundLifecycle.due(round_, start + HOUR) is RoundStatus.CLOSED
    round_.status = RoundStatus.CLOSED
    assert RoundLifecycle.due(round_, start + HOUR) is RoundStatus.SCORING
    round_.status = RoundStatus.SCORING
    assert RoundLifecycle.due(round_, start + 30 * DAY) is None
    assert RoundLifecycle.due(round_, start + 31 * DAY) is RoundStatus.RESOLVED
    round_.status = RoundStatus.RESOLVED
    assert RoundLifecycle.due(round_, start + 99 * DAY) is None


class BrokenLedger(SqlLedger):
    """A ledger that fails as a step starts moving stakes."""

    def hold(self, session: Session) -> None:
        raise RuntimeError("the ledger is down")


def test_close_freezes_and_resolve_pays_in_the_transaction_of_the_status(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    ledger = SqlLedger(clock)
    with transaction(sessions) as session:
        ledger.genesis(session)
        create_tournament(session, clock, 8, "t8", Rules.CLASSIC, Cadence.DAILY, "v1")
        alice = sign_up(session, clock, "alice", "a@example.org", "x" * 10, hasher=CHEAP)
        model = create_model(session, clock, alice, 8, "alice_model")
        grant_nmr(session, ledger, alice, 10 * NMR_UNIT, "welcome alice")
        change_stake(session, ledger, clock, model, StakeChangeKind.INCREASE, 3 * NMR_UNIT)
        round_ = open_round(session, clock, get_tournament(session, 8), publisher)
        ids = live_ids_of_round(publisher.storage, round_)
        values = pd.Series(np.linspace(0.1, 0.9, len(ids)), index=ids).round(6)
        upload(session, clock, publisher.storage, round_, alice, model.id, values)
        round_id = round_.id
    clock.set(round_.close_time)

    with pytest.raises(RuntimeError, match="the ledger is down"), transaction(sessions) as session:
        RoundLifecycle(BrokenLedger(clock), clock).close(session, session.get_one(Round, round_id))
    lifecycle = RoundLifecycle(ledger, clock)
    with transaction(sessions) as session:
        round_ = session.get_one(Round, round_id)
        assert round_.status is RoundStatus.OPEN  # the failed freeze took the close with it
        assert lifecycle.close(session, round_) is True
        frozen = session.scalars(select(RoundStake).where(RoundStake.round_id == round_id))
        assert [row.at_risk for row in frozen] == [3 * NMR_UNIT]
        assert lifecycle.start_scoring(session, round_) is True

    assert round_.resolve_time is not None
    clock.set(round_.resolve_time)
    with pytest.raises(RuntimeError, match="the ledger is down"), transaction(sessions) as session:
        RoundLifecycle(BrokenLedger(clock), clock).resolve(
            session, session.get_one(Round, round_id)
        )
    with transaction(sessions) as session:
        round_ = session.get_one(Round, round_id)
        assert round_.status is RoundStatus.SCORING  # the failed payment took the resolve with it
        assert round_result(session, round_) is None
        assert lifecycle.resolve(session, round_) is True
        assert round_result(session, round_) is not None
