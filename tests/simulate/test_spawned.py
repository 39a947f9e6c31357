"""A spawned process: it builds its object with the factory given, runs each call at the
moment given, in the order started, and a process that cannot start, or dies, or whose call
raises, is an error that says so rather than a hang."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from crowdquant.clock import Clock
from crowdquant.server.serve import scheduler_apart
from crowdquant.settings import Settings
from crowdquant.simulate.spawned import Spawned, SpawnedError

START = datetime(2026, 1, 5, 12, tzinfo=UTC)


class Echo:
    """Tells the time of its clock, and what it was given."""

    def __init__(self, clock: Clock, folder: Path) -> None:
        self.clock, self.folder = clock, folder

    def when(self, what: str) -> tuple[datetime, str]:
        return self.clock.now(), what

    def fail(self) -> None:
        raise ValueError("no such thing")


@contextmanager
def echo(folder: Path, clock: Clock) -> Iterator[Echo]:
    """An `Echo` that leaves a mark in `folder` once it is closed."""
    try:
        yield Echo(clock, folder)
    finally:
        (folder / "closed").touch()


def test_each_call_runs_there_at_its_moment_and_the_end_closes_what_was_built(
    tmp_path: Path,
) -> None:
    with Spawned(partial(echo, tmp_path), START, "echo") as spawned:
        assert spawned.finish() is None  # nothing started: nothing to wait for
        spawned.start(START, "when", "hello")
        later = START + timedelta(hours=1)
        spawned.start(later, "when", "again")  # runs once hello is done
        assert spawned.pending == 2
        assert spawned.finish() == (START, "hello")
        assert spawned.finish() == (later, "again")
        assert spawned.pending == 0
        spawned.start(later, "fail")
        raised = r"(?s)echo process's fail failed: .*ValueError: no such thing"
        with pytest.raises(SpawnedError, match=raised):
            spawned.finish()
        spawned.start(later + timedelta(days=1), "when", "still there")
        assert spawned.finish() == (later + timedelta(days=1), "still there")
    assert (tmp_path / "closed").exists()


def test_a_scheduler_apart_runs_the_market_half(tmp_path: Path) -> None:
    settings = Settings(mode="local", home=tmp_path, storage_fsync=False)
    with Spawned(partial(scheduler_apart, settings), START, "market") as market:
        market.start(START + timedelta(hours=1), "follow_market")
        assert market.finish() == []  # a database without tournaments: nothing to do


def test_a_process_that_cannot_start_says_why(tmp_path: Path) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:9/nothing"  # the discard port: no server
    settings = Settings(mode="local", home=tmp_path, database_url=unreachable)
    why = r"the market process could not start: MigrationError: cannot migrate"
    with pytest.raises(SpawnedError, match=why):
        Spawned(partial(scheduler_apart, settings), START, "market")


def test_a_process_that_died_is_an_error_not_a_hang(tmp_path: Path) -> None:
    spawned = Spawned(partial(echo, tmp_path), START, "echo")
    try:
        assert spawned.pid is not None
        os.kill(spawned.pid, signal.SIGKILL)
        spawned.start(START, "when", "anyone?")
        with pytest.raises(SpawnedError, match=r"echo process's when failed: it died \(exit"):
            spawned.finish()
    finally:
        spawned.close()
