"""The scheduler drives rounds from the clock: opens, closes, scores and resolves them."""

from __future__ import annotations

import os
import sqlite3
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.feed import FeedError
from crowdquant.db.models import Cadence, Round, RoundStatus, Rules, Tournament
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.tournament.retention import Retention
from crowdquant.tournament.rounds import LivePublisher, PublishedLive
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import (
    RoundOpened,
    Scheduler,
    TickFailed,
)
from crowdquant.tournament.scoring import FeedTargets, days_recorded
from crowdquant.tournament.tournaments import create_tournament

from .live_market import MONDAY, feed_publisher, local_storage

HOUR = timedelta(hours=1)
Happened = tuple[datetime, str]


def at(day: int, hour: int) -> datetime:
    return datetime(2001, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
def scheduler(sessions: sessionmaker[Session], clock: ManualClock, tmp_path: Path) -> Scheduler:
    """A daily tournament (8) and a weekly 2017-rules one (11), each with its publisher."""
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        create_tournament(session, clock, 11, "legacy", Rules.RULES2017, Cadence.WEEKLY, "v2")
        create_tournament(session, clock, 12, "unpublished", Rules.CLASSIC, Cadence.DAILY, "v3")
    publisher = feed_publisher(tmp_path / "files")
    return Scheduler(
        sessions,
        clock,
        {8: TournamentRuntime(publisher), 11: TournamentRuntime(publisher)},
    )


def run_until(scheduler: Scheduler, clock: ManualClock, end: datetime) -> list[Happened]:
    """Tick every hour from now until `end`; what happened, when."""
    happened = [(clock.now(), str(event)) for event in scheduler.tick()]
    while clock.now() < end:
        clock.advance(HOUR)
        happened.extend((clock.now(), str(event)) for event in scheduler.tick())
    return happened


def daily(number: int, opens: datetime, era: str, closes: datetime | None) -> list[Happened]:
    round_ = f"round {number} of tournament 8"
    events = [(opens, f"{round_} opened (live era {era})")]
    if closes is not None:
        events += [(closes, f"{round_} closed"), (closes, f"{round_} is scoring")]
    return events


def weekday_round(number: int, day: int, era: str) -> list[Happened]:
    return daily(number, at(day, 12), era, at(day, 13))


def test_two_weeks_of_daily_and_weekly_rounds(
    sessions: sessionmaker[Session], clock: ManualClock, scheduler: Scheduler
) -> None:
    happened = run_until(scheduler, clock, MONDAY + timedelta(days=14))

    weekly = "round {} of tournament 11"
    expected = [
        # started on a Monday night: both weekend windows are still open, so both open late
        *daily(1, MONDAY, "0003", None),
        (MONDAY, weekly.format(1) + " opened (live era 0003)"),
        *daily(1, MONDAY, "0003", at(8, 13))[1:],
        (at(8, 14), weekly.format(1) + " closed"),
        (at(8, 14), weekly.format(1) + " is scoring"),
        *weekday_round(2, 9, "0004"),
        *weekday_round(3, 10, "0004"),
        *weekday_round(4, 11, "0004"),
        *weekday_round(5, 12, "0004"),
        *daily(6, at(13, 12), "0004", None),
        (at(13, 18), weekly.format(2) + " opened (live era 0004)"),
        *daily(6, at(13, 12), "0004", at(15, 13))[1:],  # the weekend round closes on Monday
        (at(15, 14), weekly.format(2) + " closed"),
        (at(15, 14), weekly.format(2) + " is scoring"),
        *weekday_round(7, 16, "0005"),
        *weekday_round(8, 17, "0005"),
        *weekday_round(9, 18, "0005"),
        *weekday_round(10, 19, "0005"),
        *daily(11, at(20, 12), "0005", None),
        (at(20, 18), weekly.format(3) + " opened (live era 0005)"),
    ]
    assert happened == expected

    assert scheduler.tick() == []  # the same time again: nothing left to do
    with transaction(sessions) as session:
        statuses = dict(
            session.execute(
                select(Round.status, func.count()).group_by(Round.status).order_by(Round.status)
            ).all()
        )
        assert statuses == {RoundStatus.OPEN: 2, RoundStatus.SCORING: 12}
        unpublished = session.scalars(select(Tournament).where(Tournament.number == 12)).one()
        assert unpublished.rounds == []  # no publisher, no rounds

    clock.advance(timedelta(days=40))  # past every resolve time: catch up in one tick
    caught_up = [str(event) for event in scheduler.tick()]
    assert caught_up == [  # the calendar's half, every tournament, then the market's
        "round 11 of tournament 8 closed",
        "round 11 of tournament 8 is scoring",
        "round 3 of tournament 11 closed",
        "round 3 of tournament 11 is scoring",
        *(f"round {n} of tournament 8 resolved" for n in range(1, 12)),
        *(f"round {n} of tournament 11 resolved" for n in range(1, 4)),
    ]
    assert scheduler.tick() == []


def test_the_calendar_half_only_closes_and_opens_and_the_market_half_only_resolves(
    clock: ManualClock, scheduler: Scheduler
) -> None:
    """A tick is its calendar's half, then its market's: each moves only its own rounds,
    so the market's may run elsewhere while participants upload."""
    run_until(scheduler, clock, MONDAY + timedelta(days=14))
    clock.advance(timedelta(days=40))  # past every close and every resolve time
    market_first = [str(event) for event in scheduler.follow_market()]
    assert market_first == [  # the rounds scoring already; nothing closed nor opened
        *(f"round {n} of tournament 8 resolved" for n in range(1, 11)),
        *(f"round {n} of tournament 11 resolved" for n in range(1, 3)),
    ]
    calendar = [str(event) for event in scheduler.advance_calendar()]
    assert calendar == [  # nothing resolved; no window is open now, so nothing opens
        "round 11 of tournament 8 closed",
        "round 11 of tournament 8 is scoring",
        "round 3 of tournament 11 closed",
        "round 3 of tournament 11 is scoring",
    ]
    assert [str(event) for event in scheduler.follow_market()] == [
        "round 11 of tournament 8 resolved",
        "round 3 of tournament 11 resolved",
    ]
    assert scheduler.tick() == []


def test_the_moves_due_are_those_the_next_tick_makes(
    clock: ManualClock, scheduler: Scheduler
) -> None:
    """What a driver running the market's half apart asks before a tick: which moves are
    due, the calendar's (closed, then scoring) and the market's (resolved)."""
    run_until(scheduler, clock, MONDAY + timedelta(days=14))
    assert scheduler.moves_due(clock.now()) == frozenset()  # each tick made its moves
    clock.advance(timedelta(days=40))
    assert scheduler.moves_due(clock.now()) == {RoundStatus.CLOSED, RoundStatus.RESOLVED}
    scheduler.advance_calendar()
    assert scheduler.moves_due(clock.now()) == {RoundStatus.RESOLVED}
    scheduler.follow_market()
    assert scheduler.moves_due(clock.now()) == frozenset()


class Broken:
    def __init__(self) -> None:
        self.tries = 0

    def publish(self, tournament: Tournament, round_number: int, era_date: date) -> PublishedLive:
        self.tries += 1
        raise FeedError("no prices today")


def test_a_failing_tournament_does_not_block_the_others(
    sessions: sessionmaker[Session], clock: ManualClock, scheduler: Scheduler, tmp_path: Path
) -> None:
    working = scheduler.runtimes[8]
    broken = Broken()
    scheduler.runtimes[8] = TournamentRuntime(broken)
    clock.set(at(13, 18))  # the daily weekend round and the weekly round are both open
    first = scheduler.tick()
    assert [type(event) for event in first] == [TickFailed, RoundOpened]
    assert str(first[0]) == (
        "tournament 8: could not open a round: PublishFailed: publishing round 1 of"
        " tournament 8 failed: FeedError: no prices today"
    )
    assert str(first[1]) == "round 1 of tournament 11 opened (live era 0004)"
    for _ in range(3):  # tried again at every tick, and said once
        clock.advance(HOUR)
        assert scheduler.tick() == []
    assert broken.tries == 4

    clock.set(at(15, 14))  # Monday afternoon: no daily round is due, nothing fails
    assert [str(event) for event in scheduler.tick()] == [
        "round 1 of tournament 11 closed",
        "round 1 of tournament 11 is scoring",
    ]
    clock.set(at(16, 12))  # Tuesday's round: the failure is back, and said again once
    assert [str(event) for event in scheduler.tick()] == [str(first[0])]
    assert scheduler.tick() == []

    scheduler.runtimes[8] = working
    clock.advance(HOUR / 2)
    assert [str(event) for event in scheduler.tick()] == [
        "round 1 of tournament 8 opened (live era 0005)"
    ]


def test_a_tick_that_crashed_half_way_is_finished_by_the_next(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    scheduler: Scheduler,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock.set(at(9, 12))
    scheduler.tick()
    clock.set(at(9, 13))

    def crash(session: Session, round_: Round) -> bool:
        raise RuntimeError("the process was killed")

    with monkeypatch.context() as patched:
        patched.setattr(scheduler.lifecycle, "start_scoring", crash)
        assert [str(event) for event in scheduler.tick()] == [
            "round 1 of tournament 8 closed",
            "tournament 8: could not score round 1: RuntimeError: the process was killed",
        ]
    assert [str(event) for event in scheduler.tick()] == ["round 1 of tournament 8 is scoring"]
    assert scheduler.tick() == []


def test_run_forever_ticks_until_stopped(
    sessions: sessionmaker[Session], clock: ManualClock, scheduler: Scheduler
) -> None:
    clock.set(at(9, 12))
    stop = threading.Event()
    worker = threading.Thread(target=scheduler.run_forever, args=(stop, 0.01))
    worker.start()
    try:
        for _ in range(500):
            with transaction(sessions) as session:
                if session.scalar(select(func.count()).select_from(Round)):
                    break
            stop.wait(0.01)
        clock.set(at(9, 13))
        for _ in range(500):
            with transaction(sessions) as session:
                if session.scalars(select(Round.status)).one() is RoundStatus.SCORING:
                    break
            stop.wait(0.01)
    finally:
        stop.set()
        worker.join(timeout=10)
    assert not worker.is_alive()
    with transaction(sessions) as session:
        assert session.scalars(select(Round.status)).one() is RoundStatus.SCORING


def test_a_scored_tournament_resolves_once_its_final_day_is_scored(
    sessions: sessionmaker[Session], clock: ManualClock, tmp_path: Path
) -> None:
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
    publisher = feed_publisher(tmp_path / "files")
    scheduler = Scheduler(
        sessions,
        clock,
        {8: TournamentRuntime(publisher, FeedTargets(publisher.feed))},
        storage=publisher.storage,
    )
    scheduler.tick()  # round 1 opens (Monday night)
    clock.set(at(8, 13))  # it closes, scores day 0 (no submissions: nothing stored)
    closed = [str(event) for event in scheduler.tick()]
    assert closed[:2] == ["round 1 of tournament 8 closed", "round 1 of tournament 8 is scoring"]

    with transaction(sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        resolve_time = round_.resolve_time
        assert resolve_time is not None
    # at its resolve time the round's twenty days are known: scored, then resolved
    clock.set(resolve_time)
    happened = [str(event) for event in scheduler.tick()]
    assert "round 1 of tournament 8 resolved" in happened
    with transaction(sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        assert days_recorded(session, round_) == 20


def test_a_round_whose_targets_are_not_known_yet_waits(
    sessions: sessionmaker[Session], clock: ManualClock, tmp_path: Path
) -> None:
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
    publisher = feed_publisher(tmp_path / "files")

    class SlowMarket(FeedTargets):
        def days_known(self, round_: Round, now: datetime) -> int:
            return min(super().days_known(round_, now), 19)

    scheduler = Scheduler(
        sessions,
        clock,
        {8: TournamentRuntime(publisher, SlowMarket(publisher.feed))},
        storage=publisher.storage,
    )
    scheduler.tick()
    clock.advance(timedelta(days=60))
    happened = [str(event) for event in scheduler.tick()]
    assert "round 1 of tournament 8 resolved" not in happened
    with transaction(sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        assert round_.status is RoundStatus.SCORING
        assert days_recorded(session, round_) == 19


def test_ticks_sweep_abandoned_uploads_at_most_hourly(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(datetime.now(UTC))  # file times come from the wall clock
    storage = local_storage(tmp_path / "files")
    scheduler = Scheduler(sessions, clock, {}, storage=storage)

    def upload(key: str, age: timedelta) -> None:
        storage.write(key, b"x")
        then = (datetime.now(UTC) - age).timestamp()
        os.utime(storage.root.joinpath(*key.split("/")), (then, then))

    upload("uploads/ab/cd/old.csv", timedelta(days=2))
    upload("uploads/ab/ef/fresh.csv", timedelta(minutes=5))
    assert [str(event) for event in scheduler.tick()] == ["deleted 1 abandoned upload(s)"]
    assert storage.exists("uploads/ab/ef/fresh.csv")

    upload("uploads/ab/gh/old.csv", timedelta(days=2))
    clock.advance(timedelta(minutes=30))
    assert scheduler.tick() == []  # the last sweep was under an hour ago
    clock.advance(timedelta(hours=1))
    assert [str(event) for event in scheduler.tick()] == ["deleted 1 abandoned upload(s)"]
    assert not storage.exists("uploads/ab/gh/old.csv")


def test_ticks_sweep_as_often_as_the_retention_says(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    clock = ManualClock(datetime.now(UTC))
    storage = local_storage(tmp_path / "files")
    weekly = Retention(sweep_every=timedelta(weeks=1))
    scheduler = Scheduler(sessions, clock, {}, storage=storage, retention=weekly)

    def abandoned(key: str) -> None:
        storage.write(key, b"x")
        then = (datetime.now(UTC) - timedelta(days=2)).timestamp()
        os.utime(storage.root.joinpath(*key.split("/")), (then, then))

    abandoned("uploads/ab/cd/old.csv")
    assert [str(event) for event in scheduler.tick()] == ["deleted 1 abandoned upload(s)"]
    abandoned("uploads/ab/ef/old.csv")
    clock.advance(timedelta(days=6))
    assert scheduler.tick() == []  # the last sweep was under a week ago
    clock.advance(timedelta(days=1))
    assert [str(event) for event in scheduler.tick()] == ["deleted 1 abandoned upload(s)"]


def test_on_the_database_ledger_no_step_touches_the_chain(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with transaction(sessions) as session:
        create_tournament(session, clock, 13, "per-round", Rules.ROUND_STAKE, Cadence.DAILY, "v1")
    publisher = feed_publisher(tmp_path / "files")
    scheduler = Scheduler(
        sessions, clock, {13: TournamentRuntime(publisher)}, ledger=SqlLedger(clock)
    )
    assert scheduler.chain is None

    def on_chain(*args: object) -> None:
        raise AssertionError("a chain step ran")

    for step in ("open_chain_round", "pull_chain_stakes", "pay_chain_claims"):
        monkeypatch.setattr(f"crowdquant.tournament.scheduler.{step}", on_chain)
    statements: list[str] = []
    engine = sessions.kw["bind"]
    listen = event.listens_for(engine, "before_cursor_execute")
    listen(lambda conn, cursor, statement, *rest: statements.append(statement))

    happened = [text for _, text in run_until(scheduler, clock, at(8, 14))]
    assert happened == [
        "round 1 of tournament 13 opened (live era 0003)",
        "round 1 of tournament 13 closed",
        "round 1 of tournament 13 is scoring",
    ]
    with transaction(sessions) as session:
        resolve_time = session.scalars(select(Round.resolve_time)).one()
    assert resolve_time is not None
    clock.set(resolve_time)
    assert "round 1 of tournament 13 resolved" in [str(e) for e in scheduler.tick()]
    assert statements and not [s for s in statements if "chain_" in s or "evm_" in s]


class Probing:
    """A publisher that says, at each publication, whether another connection could begin
    writing then (on SQLite: no writer held the lock)."""

    def __init__(self, publisher: LivePublisher, database: str | None) -> None:
        self.publisher, self.database = publisher, database
        self.calls, self.free = 0, list[bool]()

    def publish(self, tournament: Tournament, round_number: int, era_date: date) -> PublishedLive:
        self.calls += 1
        if self.database is not None:
            other = sqlite3.connect(self.database, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
                self.free.append(True)
            except sqlite3.OperationalError:
                self.free.append(False)
            finally:
                other.close()
        return self.publisher.publish(tournament, round_number, era_date)


def test_an_opening_publishes_its_live_era_once_and_outside_the_write_lock(
    sessions: sessionmaker[Session], clock: ManualClock, scheduler: Scheduler
) -> None:
    bind = sessions.kw["bind"]
    sqlite = bind.dialect.name == "sqlite"
    probing = Probing(scheduler.runtimes[8].publisher, bind.url.database if sqlite else None)
    scheduler.runtimes[8] = TournamentRuntime(probing)
    clock.set(at(13, 18))  # the daily weekend round opens
    assert "round 1 of tournament 8 opened (live era 0004)" in map(str, scheduler.tick())
    assert probing.calls == 1 and probing.free == ([True] if sqlite else [])
    clock.advance(HOUR)
    scheduler.tick()  # open already: nothing published again
    assert probing.calls == 1
