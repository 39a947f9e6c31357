"""Schedulers sharing a database tick only while they hold the scheduler lease."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.lease import Lease, holder_of
from crowdquant.db.models import Cadence, Round, RoundStatus, Rules, Tournament
from crowdquant.db.session import transaction
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.tournaments import create_tournament

NOW = datetime(2026, 1, 6, 14, tzinfo=UTC)
TTL = timedelta(seconds=5)


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.02)


def a_round_due(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    """Tournament 8 with round 1 open, past its close time."""
    with transaction(sessions) as session:
        tournament = create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1"
        )
        session.flush()
        session.add(
            Round(
                tournament_id=tournament.id,
                number=1,
                status=RoundStatus.OPEN,
                open_time=NOW - timedelta(hours=2),
                close_staking_time=NOW - timedelta(hours=1),
                close_time=NOW - timedelta(hours=1),
                live_era="0001",
                dataset_version="v1",
            )
        )


def status(sessions: sessionmaker[Session]) -> RoundStatus:
    with transaction(sessions) as session:
        return session.scalars(select(Round.status)).one()


def test_only_the_lease_holder_ticks_and_it_gives_the_lease_up_when_stopped(
    sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(NOW)
    a_round_due(sessions, clock)
    other = Lease(sessions, "scheduler", TTL, holder="another process")
    assert other.acquire()

    lease = Lease(sessions, "scheduler", TTL, holder="this process")
    tries: list[bool] = []
    acquire = lease.acquire

    def counted() -> bool:
        tries.append(acquire())
        return tries[-1]

    monkeypatch.setattr(lease, "acquire", counted)
    scheduler = Scheduler(lease.fenced(sessions), clock, {})
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run_forever, args=(stop, 0.05, lease))
    thread.start()
    try:
        wait_for(lambda: len(tries) >= 3, 10, "tries for the lease")
        assert not any(tries)  # another process holds it: no tick
        assert status(sessions) is RoundStatus.OPEN
        other.release()
        wait_for(lambda: status(sessions) is RoundStatus.SCORING, 10, "tick")
        assert holder_of(sessions, "scheduler") == "this process"
        assert not other.acquire()
    finally:
        stop.set()
        thread.join(timeout=30)
    assert holder_of(sessions, "scheduler") is None
    with transaction(sessions) as session:
        assert session.scalars(select(Tournament.number)).all() == [8]
