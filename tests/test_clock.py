from datetime import UTC, datetime, timedelta

import pytest

from crowdquant.clock import ManualClock, SystemClock, rate_of
from crowdquant.simulate.clock import AcceleratedClock

T0 = datetime(2026, 1, 6, 13, 0, tzinfo=UTC)


def test_manual_clock_moves_only_forward() -> None:
    clock = ManualClock(T0)
    assert clock.now() == T0
    assert clock.advance(timedelta(days=1)) == T0 + timedelta(days=1)
    with pytest.raises(ValueError, match="never goes back"):
        clock.set(T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        ManualClock(datetime(2026, 1, 1))


def test_system_clock_is_utc() -> None:
    assert SystemClock().now().tzinfo is UTC


def test_a_clocks_rate_is_how_fast_it_moves_against_real_time() -> None:
    assert rate_of(SystemClock()) == 1.0
    assert rate_of(ManualClock(T0)) == 0.0
    assert rate_of(AcceleratedClock(T0, 86_400 / 6)) == 14_400.0
    assert rate_of(AcceleratedClock(T0)) is None  # as fast as the work goes
