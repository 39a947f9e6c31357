"""Time, injected: every service asks a clock, never the system, so tests and the simulator
can run months of rounds in seconds. All times are timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""
        ...


def rate_of(clock: Clock) -> float | None:
    """Simulated seconds a clock moves per real second: 1 for the system clock, 0 for a
    manual one, an accelerated clock's speed; None when it follows no steady rate."""
    rate = getattr(clock, "rate", None)
    return float(rate) if isinstance(rate, int | float) else None


class SystemClock:
    rate = 1.0

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that moves only when told to."""

    rate = 0.0

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("a clock's time must be timezone-aware")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, by: timedelta) -> datetime:
        if by < timedelta(0):
            raise ValueError("a clock never goes back")
        self._now += by
        return self._now

    def set(self, to: datetime) -> datetime:
        return self.advance(to.astimezone(UTC) - self._now)
