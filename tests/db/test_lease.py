"""The leader lease: one holder at a time, renewed while held, taken over once expired,
released on shutdown, and work under it fenced."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.lease import Lease, LeaseLost, holder_of
from crowdquant.db.models import Cadence, Rules, Tournament
from crowdquant.db.models import Lease as LeaseRow
from crowdquant.db.session import transaction

TTL = timedelta(seconds=30)
START = datetime(2026, 12, 5, 12, tzinfo=UTC)


class WallClock:
    """A wall clock the test moves."""

    def __init__(self) -> None:
        self.time = START

    def __call__(self) -> datetime:
        return self.time


def lease(sessions: sessionmaker[Session], holder: str, clock: WallClock) -> Lease:
    return Lease(sessions, "scheduler", TTL, holder=holder, now=clock)


def test_one_holder_at_a_time_renewed_until_it_stops(sessions: sessionmaker[Session]) -> None:
    clock = WallClock()
    first, second = lease(sessions, "a", clock), lease(sessions, "b", clock)
    assert first.acquire()
    assert not second.acquire()
    assert holder_of(sessions, "scheduler", clock.time) == "a"

    clock.time += TTL - timedelta(seconds=1)
    assert first.acquire()  # renewed: another 30 s from now
    clock.time += TTL - timedelta(seconds=1)
    assert not second.acquire()
    assert holder_of(sessions, "scheduler", clock.time) == "a"

    clock.time += timedelta(seconds=1)  # "a" stopped renewing: its lease has expired
    assert holder_of(sessions, "scheduler", clock.time) is None
    assert second.acquire()
    assert not first.acquire()
    assert holder_of(sessions, "scheduler", clock.time) == "b"


def test_a_released_lease_is_taken_at_once(sessions: sessionmaker[Session]) -> None:
    clock = WallClock()
    first, second = lease(sessions, "a", clock), lease(sessions, "b", clock)
    assert first.acquire()
    second.release()  # not its lease: nothing changes
    assert holder_of(sessions, "scheduler", clock.time) == "a"
    first.release()
    assert holder_of(sessions, "scheduler", clock.time) is None
    assert second.acquire()


def test_of_concurrent_takers_exactly_one_wins(sessions: sessionmaker[Session]) -> None:
    clock = WallClock()
    takers = [lease(sessions, f"p{number}", clock) for number in range(6)]
    start = threading.Barrier(len(takers))
    won: list[str] = []

    def take(taker: Lease) -> None:
        start.wait()
        if taker.acquire():
            won.append(taker.holder)

    threads = [threading.Thread(target=take, args=(taker,)) for taker in takers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(won) == 1
    assert holder_of(sessions, "scheduler", clock.time) == won[0]
    with transaction(sessions) as session:
        assert len(session.scalars(select(LeaseRow)).all()) == 1


def test_work_under_a_lost_lease_is_refused_and_rolled_back(
    sessions: sessionmaker[Session],
) -> None:
    clock = WallClock()
    stalled, taker = lease(sessions, "a", clock), lease(sessions, "b", clock)
    assert stalled.acquire()
    fenced = stalled.fenced(sessions)
    with transaction(fenced) as session:  # a step while held renews the lease
        session.add(
            Tournament(
                number=8,
                name="classic",
                rules=Rules.CLASSIC,
                cadence=Cadence.DAILY,
                dataset_version="v1",
                settings={},
                created_at=START,
            )
        )
    clock.time += timedelta(seconds=20)
    assert not taker.acquire()

    clock.time += TTL  # "a" stalled past its lease; "b" takes over
    assert taker.acquire()
    with pytest.raises(LeaseLost), transaction(fenced) as session:
        session.get_one(Tournament, session.scalars(select(Tournament.id)).one()).name = "late"
    with transaction(sessions) as session:
        assert session.scalars(select(Tournament.name)).one() == "classic"
    assert holder_of(sessions, "scheduler", clock.time) == "b"


def test_a_holder_whose_process_ended_on_this_machine_is_taken_over_at_once(
    sessions: sessionmaker[Session],
) -> None:
    """A `serve` killed and restarted ticks again at once; a holder on another machine, or
    alive here, keeps its lease until it expires."""
    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait()
    here = socket.gethostname()[:80]
    clock = WallClock()
    assert lease(sessions, f"elsewhere.example:{ended.pid}:x", clock).acquire()
    assert not lease(sessions, "restarted", clock).acquire()
    clock.time += TTL

    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert lease(sessions, f"{here}:{live.pid}:x", clock).acquire()
        assert not lease(sessions, "restarted", clock).acquire()
    finally:
        live.kill()
        live.wait()
    assert lease(sessions, "restarted", clock).acquire()  # before its lease expired
    assert holder_of(sessions, "scheduler", clock.time) == "restarted"
