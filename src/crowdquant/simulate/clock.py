"""The accelerated clock: simulated time, moved in steps, kept `speed` times faster than
real time.

The scheduler, the served app and the bots all read `now()` (from any thread); only the
driver moves it, with `advance_to`. With a speed, `advance_to` waits until real time has
caught up with the step, so a person watching sees a day pass in 86,400 / speed seconds;
when the work of a step takes longer, the clock goes on from there rather than rushing to
catch up. Without a speed it never waits: the headless simulator runs as fast as the work. `pace`
changes the speed from the present moment on (the demo keeps real time for a while).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime


class AcceleratedClock:
    def __init__(
        self,
        start: datetime,
        speed: float | None = None,
        *,
        real: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)
        self._real = real
        self.sleep = sleep  # how to wait for real time: a stop event's `wait` ends it early
        self.pace(speed)

    def now(self) -> datetime:
        return self._now

    def pace(self, speed: float | None) -> None:
        """Keep `speed` (None: never wait) from the present moment on."""
        if speed is not None and speed <= 0:
            raise ValueError(f"a clock's speed must be positive, not {speed}")
        self.speed = speed
        self._paced_from = (self._now, self._real())  # simulated and real time in step

    @property
    def rate(self) -> float | None:
        """Simulated seconds per real second (None: as fast as the work goes)."""
        return self.speed

    def advance_to(self, moment: datetime) -> datetime:
        """Move to `moment` (never back), then wait for real time to catch up."""
        moment = moment.astimezone(UTC)
        if moment < self._now:
            raise ValueError("a clock never goes back")
        self._now = moment
        if self.speed is not None:
            simulated, real = self._paced_from
            due = real + (moment - simulated).total_seconds() / self.speed
            late = self._real() - due
            if late < 0:
                self.sleep(-late)
            else:  # the work ran slower than the clock: pace on from here
                self._paced_from = (moment, self._real())
        return self._now
