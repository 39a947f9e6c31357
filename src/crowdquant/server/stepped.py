"""Serving on a stepped clock, for rehearsals and the kill-and-restart tests.

The clock starts at a time the operator sets, and each scheduler tick moves it on by a fixed
step, as fast as the ticks run (`tick_seconds` apart): the same start and step give the
same ticks at the same times, run after run. Each tick is announced before it runs (`say`),
so a process stopped mid-tick can be started again at the tick it did not finish. With an
end time, the server stops after the last tick at or before it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from crowdquant.clock import ManualClock
from crowdquant.server.serve import Server

logger = logging.getLogger(__name__)
TICK = "tick at "
"""How each tick is announced: this, then the clock's time in ISO 8601."""


def utc_time(text: str) -> datetime:
    """An ISO 8601 time; without an offset, UTC. ValueError names a malformed one."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO 8601 time, e.g. 2026-01-06T12:00") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def stepped_ticks(
    server: Server,
    clock: ManualClock,
    step: timedelta,
    *,
    until: datetime | None = None,
    say: Callable[[str], None],
) -> Callable[[threading.Event], None]:
    """The work `Server.run` runs beside the web server: tick, step the clock, again; with
    the server's lease (shared database), only while holding it."""
    if step <= timedelta(0):
        raise ValueError(f"a clock step is positive, not {step}")

    lease = server.lease

    def work(stop: threading.Event) -> None:
        try:
            while not stop.is_set():
                if lease is not None and not lease.acquire():
                    stop.wait(lease.renew_every)  # another process runs the scheduler
                    continue
                say(f"{TICK}{clock.now().isoformat()}")
                try:
                    server.scheduler.tick()
                except Exception:
                    logger.exception("a scheduler tick failed")
                if until is not None and clock.now() + step > until:
                    server.server.should_exit = True
                    return
                clock.advance(step)
                stop.wait(server.tick_seconds)
        finally:
            if lease is not None:
                lease.release()

    return work
