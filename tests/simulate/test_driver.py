"""The driver: which moments it stops at, when it lets the bots play, that one bot's
failure stops nobody else, and, given a market process, what runs while the bots upload and
what waits for it."""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from crowdquant.db.models import RoundStatus
from crowdquant.simulate.bots import ARCHETYPES, Bot
from crowdquant.simulate.clock import AcceleratedClock
from crowdquant.simulate.driver import Driver, Players, failures
from crowdquant.tournament.calendar import schedule_for
from crowdquant.tournament.scheduler import RoundClosed, RoundOpened, RoundScored, TickFailed

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class FakeScheduler:
    """Reports a round opened at 12:00 and closed at 13:00 each Tuesday-Saturday; the moves
    due are those set in `due` (and the calendar's half writes to `log`, when given)."""

    def __init__(self, clock: AcceleratedClock, log: list[str] | None = None) -> None:
        self.clock, self.number, self.log = clock, 0, log
        self.due: frozenset[RoundStatus] = frozenset()

    def tick(self) -> list[Any]:
        return [*self.advance_calendar(), *self.follow_market()]

    def moves_due(self, now: datetime) -> frozenset[RoundStatus]:
        return self.due

    def advance_calendar(self) -> list[Any]:
        if self.log is not None:
            self.log.append("calendar")
        now = self.clock.now()
        if now.weekday() in (1, 2, 3, 4, 5) and now.hour == 12 and now.minute == 0:
            self.number += 1
            return [RoundOpened(tournament=8, at=now, round=self.number, live_era="0001")]
        if now.hour == 13 and now.minute == 0 and self.number:
            return [RoundClosed(tournament=8, at=now, round=self.number)]
        return []

    def follow_market(self) -> list[Any]:
        return [RoundScored(tournament=8, at=self.clock.now(), round=1, days=(1,), scores=3)]


class FakeSpawned:
    """Calls `target`'s methods as a spawned process would (each when finished, here, in the
    order started), and writes down when each was started and waited for (in `log`, shared
    with the bots)."""

    def __init__(self, name: str, target: Any, log: list[str]) -> None:
        self.name, self.target, self.log = name, target, log
        self.started: deque[tuple[str, tuple[Any, ...]]] = deque()

    @property
    def pending(self) -> int:
        return len(self.started)

    def start(self, now: datetime, method: str, *args: Any) -> None:
        assert now > MONDAY
        self.started.append((method, args))
        self.log.append(f"{self.name} started {method}")

    def finish(self) -> Any:
        if not self.started:
            return None
        method, args = self.started.popleft()
        self.log.append(f"{self.name} finished {method}")
        return getattr(self.target, method)(*args)


class FakeBot:
    """Counts its looks; when it looks is the real bots' rule (a latecomer's or not)."""

    def __init__(
        self, username: str, fails: bool = False, late: bool = False, log: list[str] | None = None
    ) -> None:
        self.username, self.fails, self.looked = username, fails, 0
        self.stakes_next = True  # after an upload: whether it has a stake to place
        self.rule = Bot(username, ARCHETYPES["latecomer" if late else "linear"], Decimal(1))
        self.log = [] if log is None else log

    def looks_after(self, events: list[object]) -> bool:
        return self.rule.looks_after(events)

    def upload(self, client: object) -> str | None:
        self.looked += 1
        if self.fails:
            raise RuntimeError("the model would not fit")
        self.log.append(f"{self.username} uploaded")
        return f"{self.username} uploaded"

    def place_stakes(self, client: object) -> None:
        self.log.append(f"{self.username} staked")


def driver(
    *bots: FakeBot,
    step: timedelta = timedelta(days=1),
    log: list[str] | None = None,
    more: Sequence[FakeBot] = (),
) -> Driver:
    """A driver of `bots`; given a `log`, with a market process and a process playing `more`
    bots, both writing there."""
    clock = AcceleratedClock(MONDAY)
    scheduler = FakeScheduler(clock, log)
    apart = log is not None
    return Driver(
        clock,
        scheduler,  # type: ignore[arg-type]
        [schedule_for("daily")],
        [(bot, object()) for bot in bots],  # type: ignore[misc]
        step_size=step,
        market=FakeSpawned("market", scheduler, log) if apart else None,  # type: ignore[arg-type]
        more_players=(
            FakeSpawned("players", Players([(bot, object()) for bot in more]), log)  # type: ignore[misc,arg-type]
            if apart
            else None
        ),
    )


def test_it_stops_just_after_every_opening_and_close_and_at_the_daily_scoring_hour() -> None:
    running = driver()
    seen = [running.step().at for _ in range(7)]
    noon, one = timedelta(hours=12) + SECOND, timedelta(hours=13) + SECOND
    assert (
        seen
        == [
            MONDAY + noon,  # the scoring hour (resolve_at 12:00)
            MONDAY + one,  # Saturday's round closes on Monday
            *[MONDAY + timedelta(days=day) + at for day in (1, 2, 3) for at in (noon, one)][:5],
        ]
    )


def test_a_small_step_bounds_every_move() -> None:
    running = driver(step=timedelta(minutes=20))
    moments = [MONDAY, *(running.step().at for _ in range(5))]
    assert all(b - a <= timedelta(minutes=20) for a, b in itertools.pairwise(moments))


def test_bots_play_on_the_first_step_and_after_rounds_open_or_close_only() -> None:
    bot = FakeBot("linear_1")
    running = driver(bot, step=timedelta(hours=1))
    first = running.step()
    assert first.played == ["linear_1 uploaded"] and bot.looked == 1
    quiet = [running.step() for _ in range(10)]  # Monday: only scoring
    assert bot.looked == 1 and all(not step.played for step in quiet)
    step = running.step()
    while not any(isinstance(event, RoundOpened) for event in step.events):
        step = running.step()
    assert step.played == ["linear_1 uploaded"] and bot.looked == 2


def test_then_a_latecomer_looks_after_closes_and_the_others_after_openings() -> None:
    on_time, late = FakeBot("linear_1"), FakeBot("latecomer_1", late=True)
    running = driver(on_time, late, step=timedelta(hours=1))
    running.step()
    assert (on_time.looked, late.looked) == (1, 1)  # the first step: everyone
    openings = closes = 0
    for _ in range(80):  # three days: Tuesday's and Wednesday's rounds
        step = running.step()
        opened = any(isinstance(event, RoundOpened) for event in step.events)
        closed = any(isinstance(event, RoundClosed) for event in step.events)
        openings, closes = openings + opened, closes + closed
        assert step.played == ["linear_1 uploaded"] * opened + ["latecomer_1 uploaded"] * closed
    assert (openings, closes) == (2, 2)
    assert (on_time.looked, late.looked) == (1 + openings, 1 + closes)


def test_a_failing_bot_is_reported_and_the_others_still_play() -> None:
    broken, fine = FakeBot("boosting_1", fails=True), FakeBot("linear_1")
    step = driver(broken, fine).step()
    assert step.played == ["linear_1 uploaded"]
    assert failures(step) == ["boosting_1: RuntimeError: the model would not fit"]
    failed = TickFailed(tournament=8, at=step.at, action="score round 1", error="boom")
    step.events.append(failed)
    assert failures(step)[0] == str(failed)


def test_a_bot_that_failed_tries_again_a_minute_later() -> None:
    flaky = FakeBot("linear_1", fails=True)
    running = driver(flaky)
    first = running.step()
    assert first.failed and flaky.looked == 1
    flaky.fails = False
    again = running.step()
    assert again.at == first.at + timedelta(minutes=1)
    assert again.played == ["linear_1 uploaded"] and flaky.looked == 2
    assert running.step().at > again.at + timedelta(minutes=1)  # back to the calendar's pace


def test_the_polls_run_once_at_the_end_of_every_step_and_a_failure_stops_nothing() -> None:
    polled: list[int] = []
    running = driver(FakeBot("linear_1"))

    def poll() -> None:
        polled.append(len(polled))
        if len(polled) == 2:
            raise RuntimeError("the database was busy")

    running.polls = [poll]
    first, second, third = (running.step() for _ in range(3))
    assert polled == [0, 1, 2]
    assert first.failed == [] and third.failed == []
    assert second.failed == [f"{poll.__qualname__}: RuntimeError: the database was busy"]


def test_on_two_cores_the_bots_upload_while_the_market_half_runs_and_stake_after() -> None:
    log: list[str] = []
    here, there = FakeBot("linear_1", log=log), FakeBot("example_1", log=log)
    running = driver(here, log=log, more=[there], step=timedelta(hours=1))
    first = running.step()
    assert log == [
        "market started follow_market",
        "calendar",
        "players started upload",
        "linear_1 uploaded",
        "players finished upload",
        "example_1 uploaded",
        "market finished follow_market",
        "players started place_stakes",
        "linear_1 staked",
        "players finished place_stakes",
        "example_1 staked",
    ]
    assert first.played == ["linear_1 uploaded", "example_1 uploaded"]
    assert [type(event) for event in first.events] == [RoundScored]  # the market's events


def test_a_market_half_nothing_waits_for_runs_on_into_the_next_steps() -> None:
    log: list[str] = []
    running = driver(FakeBot("linear_1", log=log), log=log, step=timedelta(hours=1))
    running.step()
    log.clear()
    quiet = [running.step() for _ in range(2)]  # nobody plays, no round moves
    assert log == ["market started follow_market", "calendar"] * 2  # side by side
    assert all(not step.events for step in quiet)
    log.clear()
    running.scheduler.due = frozenset({RoundStatus.CLOSED})  # type: ignore[attr-defined]
    moving = running.step()  # the calendar moves a round: what still runs is waited for first
    assert log == [
        "market finished follow_market",
        "market finished follow_market",
        "calendar",
        "market started follow_market",
    ]
    assert [type(event) for event in moving.events] == [RoundScored, RoundScored]


def test_where_a_round_may_resolve_the_bots_stake_after_the_market_half_though_none_stakes() -> (
    None
):
    log: list[str] = []
    bot = FakeBot("linear_1", log=log)
    running = driver(bot, log=log)  # daily: Monday noon, Monday 13:00, Tuesday noon, ...
    running.step()  # the first step: linear_1 uploads and stakes
    bot.stakes_next = False  # from now on, as a classic bot: its one stake is placed
    running.step()
    log.clear()
    opened = running.step()  # Tuesday noon: linear_1 uploads, with nothing to stake
    assert any(isinstance(event, RoundOpened) for event in opened.events)
    assert here(log) == [
        "market started follow_market",
        "calendar",
        "linear_1 uploaded",
        "linear_1 staked",
    ]
    log.clear()
    running.step()  # Tuesday 13:00: a close nobody here plays
    running.scheduler.due = frozenset({RoundStatus.RESOLVED})  # type: ignore[attr-defined]
    running.step()  # Wednesday noon: a round may resolve
    assert here(log) == [
        "market started follow_market",
        "calendar",
        "market started follow_market",
        "calendar",
        "linear_1 uploaded",
        *["market finished follow_market"] * 4,  # each since the first step's, this one too
        "linear_1 staked",
    ]


def here(log: list[str]) -> list[str]:
    """`log` less what the players' process did (it plays nobody here)."""
    return [line for line in log if not line.startswith("players")]


def test_at_the_end_of_a_run_no_market_half_is_left_running() -> None:
    log: list[str] = []
    running = driver(FakeBot("linear_1", log=log), log=log, step=timedelta(hours=1))
    steps: list[object] = []
    running.run(lambda step: steps.append(step) is None and len(steps) == 3)
    assert running.market is not None and running.market.pending == 0
    assert log[-1] == "market finished follow_market"


def test_on_two_cores_a_failing_bot_stakes_nothing_and_all_try_again() -> None:
    log: list[str] = []
    broken, fine = FakeBot("boosting_1", fails=True, log=log), FakeBot("linear_1", log=log)
    running = driver(fine, log=log, more=[broken])
    first = running.step()
    assert failures(first) == ["boosting_1: RuntimeError: the model would not fit"]
    assert "linear_1 staked" in log and "boosting_1 staked" not in log
    broken.fails = False
    log.clear()
    again = running.step()
    assert again.at == first.at + timedelta(minutes=1)
    assert "boosting_1 staked" in log


def test_the_market_half_is_waited_for_even_when_the_bots_turn_raises() -> None:
    """A failure outside a bot's turn (the driver's own) still waits for the market half,
    so that no tick is left running behind the next."""
    log: list[str] = []
    bot = FakeBot("linear_1", log=log)
    running = driver(bot, log=log)

    def broken(events: list[object]) -> bool:
        raise KeyboardInterrupt

    bot.looks_after = broken  # type: ignore[method-assign]
    running.step()  # the first step: everyone plays, whatever the events
    log.clear()
    with pytest.raises(KeyboardInterrupt):
        while True:
            running.step()
    assert log[-1] == "market finished follow_market"


def test_the_market_half_started_beside_the_calendar_is_waited_for_when_the_calendar_raises() -> (
    None
):
    log: list[str] = []
    running = driver(FakeBot("linear_1", log=log), log=log, step=timedelta(hours=1))
    running.step()
    log.clear()

    def broken() -> list[object]:
        log.append("calendar")
        raise KeyboardInterrupt

    running.scheduler.advance_calendar = broken  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        running.step()
    assert running.market is not None and running.market.pending == 0
    assert log[-1] == "market finished follow_market"
