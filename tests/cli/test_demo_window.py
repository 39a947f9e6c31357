"""The demo's real-time windows, without a server: when the clock slows to real time and
speeds up again, what the console says, and how a window's length is written."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
import typer

from crowdquant.simulate.clock import AcceleratedClock

demo = importlib.import_module("crowdquant.cli.demo")  # the package names its command `demo`

TUESDAY_NOON = datetime(2026, 1, 6, 12, tzinfo=UTC)
CLOSES = TUESDAY_NOON + timedelta(hours=1)
FAST = 86_400 / 6
URL = "http://127.0.0.1:8000/"


def _clock(start: datetime, speed: float | None) -> AcceleratedClock:
    """A clock whose waits for real time return at once."""
    return AcceleratedClock(start, speed, real=lambda: 0.0, sleep=lambda seconds: None)


def test_a_window_is_written_in_seconds_minutes_or_hours() -> None:
    assert demo.parse_window("3m") == timedelta(minutes=3)
    assert demo.parse_window("90s") == demo.parse_window("90") == timedelta(seconds=90)
    assert demo.parse_window("1.5h") == timedelta(minutes=90)
    assert demo.parse_window("0") == timedelta(0)
    with pytest.raises(typer.Exit):
        demo.parse_window("soon")


@pytest.fixture
def told(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(demo, "_say", lines.append)
    return lines


def _follow(
    windows: demo.Windows, clock: AcceleratedClock, driver: Any, round_: int | None
) -> None:
    windows.follow(clock, driver, None if round_ is None else (round_, CLOSES))


def test_the_clock_keeps_real_time_for_the_window_then_runs_fast_again(told: list[str]) -> None:
    clock = _clock(TUESDAY_NOON, FAST)
    driver = SimpleNamespace(step_size=timedelta(hours=1))
    windows = demo.Windows(timedelta(minutes=3), FAST, URL)

    _follow(windows, clock, driver, 7)  # round 7 is open: the window opens
    assert clock.speed == 1.0 and driver.step_size == demo.POLL
    assert "window open" in told[-1] and "round 7" in told[-1] and URL in told[-1]
    assert "3 minutes, until 12:03:00 UTC" in told[-1]

    clock.advance_to(TUESDAY_NOON + timedelta(minutes=2, seconds=58))
    _follow(windows, clock, driver, 7)
    assert clock.speed == 1.0 and driver.step_size == timedelta(seconds=2)  # ends on time
    assert len(told) == 1

    clock.advance_to(TUESDAY_NOON + timedelta(minutes=3))
    _follow(windows, clock, driver, 7)
    assert clock.speed == FAST and driver.step_size == timedelta(hours=1)
    assert "window closed" in told[-1] and "stays open" in told[-1]

    for moment, round_ in ((CLOSES, None), (TUESDAY_NOON + timedelta(days=1), 8)):
        clock.advance_to(moment)
        _follow(windows, clock, driver, round_)  # no second window in the same week
    assert clock.speed == FAST and len(told) == 2

    clock.advance_to(TUESDAY_NOON + timedelta(days=7))  # next week's first round
    _follow(windows, clock, driver, 12)
    assert clock.speed == 1.0 and "round 12" in told[-1]


def test_a_window_ends_when_its_round_closes_and_none_opens_at_zero(told: list[str]) -> None:
    clock = _clock(CLOSES - timedelta(seconds=30), None)
    driver = SimpleNamespace(step_size=timedelta(hours=1))
    windows = demo.Windows(timedelta(minutes=3), None, URL)
    _follow(windows, clock, driver, 7)
    assert "30 seconds, until 13:00:00 UTC" in told[-1]
    clock.advance_to(CLOSES + timedelta(seconds=1))
    _follow(windows, clock, driver, None)
    assert "window closed" in told[-1] and "is closed" in told[-1]
    assert clock.speed is None and driver.step_size == timedelta(hours=1)

    never = demo.Windows(timedelta(0), None, URL)
    _follow(never, clock, driver, 8)
    assert len(told) == 2 and clock.speed is None
