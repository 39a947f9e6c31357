"""The driver: which moments it stops at, when it lets the bots play, and that one bot's
failure stops nobody else."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from crowdquant.simulate.bots import ARCHETYPES, Bot
from crowdquant.simulate.clock import AcceleratedClock
from crowdquant.simulate.driver import Driver, failures
from crowdquant.tournament.calendar import schedule_for
from crowdquant.tournament.scheduler import RoundClosed, RoundOpened, RoundScored, TickFailed

MONDAY = datetime(2026, 1, 5, tzinfo=UTC)
SECOND = timedelta(seconds=1)


class FakeScheduler:
    """Reports a round opened at 12:00 and closed at 13:00 each Tuesday-Saturday."""

    def __init__(self, clock: AcceleratedClock) -> None:
        self.clock, self.number = clock, 0

    def tick(self) -> list[Any]:
        now = self.clock.now()
        if now.weekday() in (1, 2, 3, 4, 5) and now.hour == 12 and now.minute == 0:
            self.number += 1
            return [RoundOpened(tournament=8, at=now, round=self.number, live_era="0001")]
        if now.hour == 13 and now.minute == 0 and self.number:
            return [RoundClosed(tournament=8, at=now, round=self.number)]
        return [RoundScored(tournament=8, at=now, round=1, days=(1,), scores=3)]


class FakeBot:
    """Counts its looks; when it looks is the real bots' rule (a latecomer's or not)."""

    def __init__(self, username: str, fails: bool = False, late: bool = False) -> None:
        self.username, self.fails, self.looked = username, fails, 0
        self.rule = Bot(username, ARCHETYPES["latecomer" if late else "linear"], Decimal(1))

    def looks_after(self, events: list[object]) -> bool:
        return self.rule.looks_after(events)

    def act(self, client: object) -> str | None:
        self.looked += 1
        if self.fails:
            raise RuntimeError("the model would not fit")
        return f"{self.username} uploaded"


def driver(*bots: FakeBot, step: timedelta = timedelta(days=1)) -> Driver:
    clock = AcceleratedClock(MONDAY)
    return Driver(
        clock,
        FakeScheduler(clock),  # type: ignore[arg-type]
        [schedule_for("daily")],
        [(bot, object()) for bot in bots],  # type: ignore[misc]
        step_size=step,
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
