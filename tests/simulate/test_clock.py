"""The accelerated clock: steps forward only, keeps pace with real time, never rushes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crowdquant.simulate.clock import AcceleratedClock

T0 = datetime(2026, 1, 6, 12, tzinfo=UTC)


class FakeTime:
    """Real time that moves only when slept through or when work is said to take it."""

    def __init__(self) -> None:
        self.now, self.slept = 100.0, []  # type: tuple[float, list[float]]

    def real(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_day_passes_in_its_share_of_real_time() -> None:
    real = FakeTime()
    clock = AcceleratedClock(T0, speed=86_400 / 6, real=real.real, sleep=real.sleep)  # 6 s/day
    assert clock.advance_to(T0 + timedelta(hours=12)) == T0 + timedelta(hours=12)
    assert real.slept == [pytest.approx(3.0)]
    real.now += 1.0  # the step's work took a second: the next wait is shorter
    clock.advance_to(T0 + timedelta(days=1))
    assert real.slept[-1] == pytest.approx(2.0)
    assert clock.now() == T0 + timedelta(days=1)


def test_slow_work_is_not_made_up_by_rushing() -> None:
    real = FakeTime()
    clock = AcceleratedClock(T0, speed=86_400, real=real.real, sleep=real.sleep)  # 1 s/day
    real.now += 10.0  # ten real seconds of work: ten days' worth
    clock.advance_to(T0 + timedelta(days=1))
    assert real.slept == []
    clock.advance_to(T0 + timedelta(days=2))  # paced from the late step, not from the start
    assert real.slept == [pytest.approx(1.0)]


def test_without_a_speed_it_never_waits() -> None:
    real = FakeTime()
    clock = AcceleratedClock(T0, real=real.real, sleep=real.sleep)
    clock.advance_to(T0 + timedelta(days=30))
    assert real.slept == [] and clock.now() == T0 + timedelta(days=30)


def test_it_never_goes_back_and_refuses_naive_or_stopped_time() -> None:
    clock = AcceleratedClock(T0)
    with pytest.raises(ValueError, match="never goes back"):
        clock.advance_to(T0 - timedelta(seconds=1))
    with pytest.raises(ValueError, match="timezone-aware"):
        AcceleratedClock(datetime(2026, 1, 6))
    with pytest.raises(ValueError, match="positive"):
        AcceleratedClock(T0, speed=0)


def test_a_new_pace_keeps_real_time_from_the_present_moment_on() -> None:
    real = FakeTime()
    clock = AcceleratedClock(T0, real=real.real, sleep=real.sleep)  # as fast as the work
    clock.advance_to(T0 + timedelta(days=3))
    real.now += 100.0  # real time passed while it ran fast: nothing to catch up on
    clock.pace(1.0)
    assert clock.rate == 1.0
    clock.advance_to(T0 + timedelta(days=3, seconds=5))
    assert real.slept == [pytest.approx(5.0)]  # a real second per second
    clock.pace(None)
    assert clock.rate is None
    clock.advance_to(T0 + timedelta(days=9))
    assert real.slept == [pytest.approx(5.0)]
    with pytest.raises(ValueError, match="positive"):
        clock.pace(-1.0)
