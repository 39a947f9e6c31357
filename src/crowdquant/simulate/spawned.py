"""Work on the second core: an object built in a spawned process and called there, one
method at a time, while this process goes on.

A step of the simulation is the scheduler's tick, then the bots' turns. The tick's market
half (`Scheduler.follow_market`: scoring, resolution, the fund) changes nothing the bots act
on while they upload, and the bots' uploads do not depend on each other, so the driver
(`driver.Driver`) hands the market half and a share of the bots to processes of their own
(`Spawned`): each `start`s a call at the step's moment, and the driver `finish`es them
before anything that depends on them. Calls run there one after another, in the order
started: a call may be started before the last is finished (it then runs once that one is
done), so a market half nothing waits for yet runs on into the next step. The order of what
is decided is that of a sequential step, so the same seed gives the same run.

A spawned process shares nothing with this one but the database and the files: it builds its
object with a factory given here (engine, storage, ledger and app of its own, from the same
settings, as a second server process on the same database would), on a clock of its own
that each call moves to the moment it is given.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import traceback
from collections import deque
from collections.abc import Callable
from contextlib import AbstractContextManager, ExitStack
from datetime import datetime
from multiprocessing.connection import Connection
from typing import Any

from crowdquant.clock import Clock

Factory = Callable[[Clock], AbstractContextManager[Any]]
"""What builds the process's object on its clock (and closes what it built at the end); it
must pickle: a module's function, or a `functools.partial` of one."""

START_TIMEOUT = 300.0
"""Seconds a process may take to start (importing, connecting, fitting nothing yet)."""


class SpawnedError(RuntimeError):
    """A spawned process died, could not start, or its call raised; the message says why."""


class Spawned:
    """An object built by `factory` in a process of its own, whose methods are called there
    one at a time, in the order started: `start` a call, then `finish` it for its answer
    (calls started and not yet finished are `pending`). `close` it when done (or use it as a
    context manager)."""

    def __init__(self, factory: Factory, start: datetime, name: str) -> None:
        self.name = name
        context = multiprocessing.get_context("spawn")  # nothing of this process's threads
        self._conn, theirs = context.Pipe()
        self._process = context.Process(
            target=_serve, args=(theirs, factory, start), name=f"crowdquant-{name}", daemon=True
        )
        self._process.start()
        theirs.close()
        self._started: deque[str] = deque()  # the methods of the calls not finished yet
        try:
            self._receive(START_TIMEOUT)  # ready
        except SpawnedError as exc:
            self.close()
            raise SpawnedError(f"the {name} process could not start: {exc}") from None

    @property
    def pid(self) -> int | None:
        return self._process.pid

    @property
    def pending(self) -> int:
        """How many calls were started and not finished yet."""
        return len(self._started)

    def start(self, now: datetime, method: str, *args: Any) -> None:
        """Call `method(*args)` there, its clock moved to `now`, once the calls started
        before are done."""
        with contextlib.suppress(OSError):  # its end is closed: `finish` says how it ended
            self._conn.send((now, method, args))
        self._started.append(method)

    def finish(self) -> Any:
        """Wait for the oldest call not finished yet; its answer (None when none is
        pending)."""
        if not self._started:
            return None
        method = self._started.popleft()
        try:
            return self._receive(None)
        except SpawnedError as exc:
            raise SpawnedError(f"the {self.name} process's {method} failed: {exc}") from None

    def close(self) -> None:
        if self._process.is_alive():
            with contextlib.suppress(OSError):  # gone already
                self._conn.send(None)
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def __enter__(self) -> Spawned:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _receive(self, timeout: float | None) -> Any:
        """The process's next answer: a value, or its failure raised here."""
        try:
            if not self._conn.poll(timeout):
                raise SpawnedError(f"it did not answer within {timeout:g} s")
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            self._process.join(timeout=5)
            raise SpawnedError(f"it died (exit code {self._process.exitcode})") from None
        if not ok:
            raise SpawnedError(value)
        return value


def _serve(conn: Connection, factory: Factory, start: datetime) -> None:
    """The process's work: build the object, say it is ready, then run each call received
    (its clock moved to the call's moment) until told None."""
    from threadpoolctl import threadpool_limits

    from crowdquant.simulate.clock import AcceleratedClock

    logging.getLogger("crowdquant").setLevel(logging.WARNING)
    logging.getLogger("crowdquant.tournament.scheduler").setLevel(logging.CRITICAL)
    threadpool_limits(1)  # a core each: the processes' numerical libraries keep to theirs
    clock = AcceleratedClock(start)
    with ExitStack() as stack:
        try:
            target = stack.enter_context(factory(clock))
        except BaseException as exc:
            conn.send((False, f"{type(exc).__name__}: {exc}"))
            return
        conn.send((True, None))
        try:
            while (call := conn.recv()) is not None:
                now, method, args = call
                clock.advance_to(now)
                try:
                    conn.send((True, getattr(target, method)(*args)))
                except Exception:  # its own failures are answers: this is a fault
                    conn.send((False, traceback.format_exc(limit=-3, chain=False)))
        except (EOFError, KeyboardInterrupt):  # the parent went away: nothing left to do
            pass
