"""The market process: it runs the market's half of each tick at the moment given, and a
process that cannot start, or dies, is an error that says so rather than a hang."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest

from crowdquant.server.serve import scheduler_apart
from crowdquant.settings import Settings
from crowdquant.simulate.market_process import MarketProcess, MarketProcessError

START = datetime(2026, 1, 5, 12, tzinfo=UTC)


def on(home: Path, database_url: str | None = None) -> MarketProcess:
    """A market process on the database of `home` (or `database_url`)."""
    settings = Settings(mode="local", home=home, database_url=database_url, storage_fsync=False)
    return MarketProcess(partial(scheduler_apart, settings), START)


def test_it_runs_each_market_half_it_is_given_and_says_what_happened(tmp_path: Path) -> None:
    with on(tmp_path) as market:
        assert market.finish() == []  # nothing started: nothing to wait for
        market.start(START + timedelta(hours=1))
        with pytest.raises(MarketProcessError, match="was not waited for"):
            market.start(START + timedelta(hours=2))
        assert market.finish() == []  # a database without tournaments: nothing to do
        market.start(START + timedelta(hours=2))
        assert market.finish() == []


def test_a_process_that_cannot_start_says_why(tmp_path: Path) -> None:
    unreachable = "postgresql://nobody@127.0.0.1:9/nothing"  # the discard port: no server
    with pytest.raises(
        MarketProcessError, match=r"could not start: MigrationError: cannot migrate"
    ):
        on(tmp_path, unreachable)


def test_a_process_that_died_is_an_error_not_a_hang(tmp_path: Path) -> None:
    market = on(tmp_path)
    try:
        assert market.pid is not None
        os.kill(market.pid, signal.SIGKILL)
        market.start(START + timedelta(hours=1))
        with pytest.raises(MarketProcessError, match=r"failed: it died \(exit code -9\)"):
            market.finish()
    finally:
        market.close()
