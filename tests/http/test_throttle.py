"""The throttle on its own: rate limits per address and per account or login, and the
sign-in waits on an injected clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from crowdquant.clock import ManualClock
from crowdquant.http.throttle import Action, Throttle, TooManyRequests
from crowdquant.settings import Settings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 3, 13, 0, tzinfo=UTC))


def throttle(clock: ManualClock, **limits: object) -> Throttle:
    return Throttle.from_settings(Settings.model_validate(limits), clock)


def test_a_login_is_limited_across_addresses(clock: ManualClock) -> None:
    limited = throttle(clock, rate_limit_sign_in="3/hour")
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        limited.hit(Action.SIGN_IN, address, "Olivia")
    with pytest.raises(TooManyRequests) as refused:
        limited.hit(Action.SIGN_IN, "192.0.2.4", " olivia ")
    assert 0 < refused.value.retry_after <= 3600
    limited.hit(Action.SIGN_IN, "192.0.2.4", "oscar")  # another login, another address


def test_accounts_and_actions_are_counted_apart(clock: ManualClock) -> None:
    limited = throttle(clock, rate_limit_upload="1/hour", rate_limit_diagnostics="1/hour")
    alice, bob = uuid.uuid4(), uuid.uuid4()
    limited.hit(Action.UPLOAD, "192.0.2.1", alice)
    limited.hit(Action.DIAGNOSTICS, "192.0.2.1", alice)
    limited.hit(Action.UPLOAD, "192.0.2.2", bob)
    with pytest.raises(TooManyRequests, match="too many upload requests"):
        limited.hit(Action.UPLOAD, "192.0.2.3", alice)


def test_a_window_moves_with_the_injected_clock(clock: ManualClock) -> None:
    """An accelerated clock (the demo, the simulator) runs the limits as fast as the rounds."""
    limited = throttle(clock, rate_limit_upload="2/hour")
    account = uuid.uuid4()
    limited.hit(Action.UPLOAD, "192.0.2.1", account)
    clock.advance(timedelta(minutes=30))
    limited.hit(Action.UPLOAD, "192.0.2.1", account)
    with pytest.raises(TooManyRequests) as refused:
        limited.hit(Action.UPLOAD, "192.0.2.1", account)
    assert refused.value.retry_after == 30 * 60  # until the first hit leaves the window
    clock.advance(timedelta(minutes=30))
    limited.hit(Action.UPLOAD, "192.0.2.1", account)  # the first hit has left the window
    with pytest.raises(TooManyRequests):
        limited.hit(Action.UPLOAD, "192.0.2.1", account)


def test_sign_in_waits_double_up_to_the_maximum_and_a_success_clears_the_login(
    clock: ManualClock,
) -> None:
    guard = throttle(
        clock,
        sign_in_free_failures=1,
        sign_in_first_delay_seconds=10,
        sign_in_max_delay_seconds=30,
    )
    guard.sign_in_failed(None, "olivia")
    guard.check_sign_in(None, "olivia")  # the free failure
    waits = []
    for _ in range(4):
        guard.sign_in_failed(None, "olivia")
        with pytest.raises(TooManyRequests) as refused:
            guard.check_sign_in(None, "olivia")
        waits.append(refused.value.retry_after)
        clock.advance(timedelta(seconds=refused.value.retry_after))
    assert waits == [10, 20, 30, 30]
    guard.check_sign_in(None, "olivia")
    guard.sign_in_succeeded("OLIVIA")
    guard.sign_in_failed(None, "olivia")
    guard.check_sign_in(None, "olivia")  # counted from zero again
