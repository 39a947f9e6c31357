"""`serve` on a stepped clock: the same ticks at the same times, announced, up to the end."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.clock import ManualClock
from crowdquant.server.serve import Server
from crowdquant.server.stepped import TICK, stepped_ticks, utc_time

START = datetime(2001, 1, 9, 12, 5, tzinfo=UTC)


class Ticks:
    def __init__(self, clock: ManualClock) -> None:
        self.clock, self.at = clock, list[datetime]()

    def tick(self) -> None:
        self.at.append(self.clock.now())
        if len(self.at) == 2:
            raise RuntimeError("a failing tick is logged, and the clock goes on")


def test_each_tick_moves_the_clock_one_step_until_the_end() -> None:
    clock = ManualClock(START)
    ticks = Ticks(clock)
    server = SimpleNamespace(
        scheduler=ticks, server=SimpleNamespace(should_exit=False), tick_seconds=0, lease=None
    )
    said: list[str] = []
    until = START + timedelta(hours=20)
    work = stepped_ticks(
        cast(Server, server), clock, timedelta(hours=6), until=until, say=said.append
    )
    work(threading.Event())
    expected = [START + timedelta(hours=6 * k) for k in range(4)]  # the last at +18 h
    assert ticks.at == expected
    assert said == [f"{TICK}{moment.isoformat()}" for moment in expected]
    assert server.server.should_exit  # the web server stops with the last tick


def test_a_stop_ends_the_ticks() -> None:
    clock = ManualClock(START)
    ticks = Ticks(clock)
    stop = threading.Event()
    server = SimpleNamespace(scheduler=ticks, server=SimpleNamespace(), tick_seconds=0, lease=None)
    work = stepped_ticks(cast(Server, server), clock, timedelta(hours=1), say=lambda _: stop.set())
    work(stop)
    assert ticks.at == [START]


def test_a_step_is_positive() -> None:
    server = cast(Server, SimpleNamespace())
    with pytest.raises(ValueError, match="positive"):
        stepped_ticks(server, ManualClock(START), timedelta(0), say=print)


def test_times_are_utc() -> None:
    assert utc_time("2001-01-09T12:05") == START
    assert utc_time("2001-01-09T13:05+01:00") == START
    with pytest.raises(ValueError, match="not an ISO 8601 time"):
        utc_time("tuesday")


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        (["--clock-until", "2001-01-10"], "--clock-until needs --clock-start"),
        (["--clock-start", "tuesday"], "'tuesday' is not an ISO 8601 time"),
        (["--clock-start", "2001-01-09", "--clock-step-hours", "0"], "--clock-step-hours"),
        (["--clock-start", "2001-01-09", "--clock-until", "2001-01-08"], "before --clock-start"),
    ],
)
def test_serve_refuses_a_bad_clock_before_starting(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, options: list[str], problem: str
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("CROWDQUANT_DATABASE_URL", raising=False)
    result = CliRunner().invoke(app, ["serve", "--port", "0", *options])
    assert result.exit_code == 1
    assert problem in result.output
    assert not (tmp_path / "home").exists()  # refused before anything is set up
