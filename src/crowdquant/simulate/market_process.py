"""The market's half of the scheduler's ticks in a process of its own, beside the bots.

A step of the simulation is the scheduler's tick, then the bots' turns, each using one core.
The tick's market half (`Scheduler.follow_market`: scoring, resolution, the fund) changes
nothing the bots act on while they upload, so `MarketProcess` runs it in a second process,
on the same database and files, while they play: the driver commits the step's calendar
half first (rounds closed and opened), starts the market half (`start`), lets the bots
upload, and waits for it (`finish`) before they stake, which they do on what it resolved.
The order of what is decided is that of a sequential tick: the same seed gives the same run.

The process is spawned, so it shares nothing with this one but the database and the files:
it builds its scheduler with `schedulers` (engine, storage, ledger and tournament runtimes of
its own, from the same settings, as a second server process on the same database would).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import traceback
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from crowdquant.clock import Clock
from crowdquant.tournament.scheduler import Event, Scheduler

Schedulers = Callable[[Clock], AbstractContextManager[Scheduler]]
"""What builds the process's scheduler on a clock (and closes what it built at the end); it
must pickle: a module's function, or a `functools.partial` of one."""

logger = logging.getLogger(__name__)

START_TIMEOUT = 300.0
"""Seconds the process may take to start (importing, connecting, loading the markets)."""


class MarketProcessError(RuntimeError):
    """The market process died or could not run a market half; the message says why."""


class MarketProcess:
    """A process running `Scheduler.follow_market` at the moments it is given, one at a time;
    `close` it when done (or use it as a context manager)."""

    def __init__(self, schedulers: Schedulers, start: datetime) -> None:
        context = multiprocessing.get_context("spawn")  # nothing of this process's threads
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve,
            args=(theirs, schedulers, start),
            name="crowdquant-market",
            daemon=True,
        )
        self._process.start()
        theirs.close()
        self._running = False
        try:
            self._receive(START_TIMEOUT)  # ready
        except MarketProcessError as exc:
            self.close()
            raise MarketProcessError(f"the market process could not start: {exc}") from None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    def start(self, now: datetime) -> None:
        """Begin the market half of the tick at `now`."""
        if self._running:
            raise MarketProcessError("the market half of the last tick was not waited for")
        with contextlib.suppress(OSError):  # its end is closed: `finish` says how it ended
            self._conn.send(now)
        self._running = True

    def finish(self) -> list[Event]:
        """Wait for the market half started last; what happened, in order."""
        if not self._running:
            return []
        self._running = False
        try:
            events: list[Event] = self._receive(None)
        except MarketProcessError as exc:
            raise MarketProcessError(f"the market process failed: {exc}") from None
        return events

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):  # gone already
                self._conn.send(None)
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> MarketProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self, timeout: float | None) -> Any:
        """The process's next answer: a value, or its failure raised here."""
        try:
            if not self._conn.poll(timeout):
                raise MarketProcessError(f"it did not answer within {timeout:g} s")
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(timeout=5)
            raise MarketProcessError(f"it died (exit code {self._process.exitcode})") from None
        if not ok:
            raise MarketProcessError(value)
        return value


def _serve(conn: Connection, schedulers: Schedulers, start: datetime) -> None:
    """The process's work: build a scheduler with `schedulers`, tell the parent it is ready,
    then run the market half at each moment received, until told None."""
    from threadpoolctl import threadpool_limits

    from crowdquant.simulate.clock import AcceleratedClock

    logging.getLogger("crowdquant").setLevel(logging.WARNING)
    logging.getLogger("crowdquant.tournament.scheduler").setLevel(logging.CRITICAL)
    threadpool_limits(1)  # one core here; the bots' process has the other
    clock = AcceleratedClock(start)
    with ExitStack() as stack:
        try:
            scheduler = stack.enter_context(schedulers(clock))
        except BaseException as exc:
            conn.send((False, f"{type(exc).__name__}: {exc}"))
            return
        conn.send((True, None))
        try:
            while (now := conn.recv()) is not None:
                clock.advance_to(now)
                try:
                    conn.send((True, scheduler.follow_market()))
                except Exception:  # a tick's own failures are events: this is a fault
                    conn.send((False, traceback.format_exc(limit=-3, chain=False)))
        except (EOFError, KeyboardInterrupt):  # the parent went away: nothing left to do
            pass
