"""The throttle on its own: rate limits per address and per account or login, and the
sign-in waits on an injected clock; counted in memory, and in a database shared by several
processes."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crowdquant.clock import ManualClock
from crowdquant.db.models import RateLimitHits, SignInFailures
from crowdquant.db.session import make_engine, transaction
from crowdquant.http.throttle import (
    PRUNE_EVERY,
    Action,
    Counts,
    MemoryCounts,
    SharedCounts,
    Throttle,
    TooManyRequests,
)
from crowdquant.settings import Settings

from ..conftest import PostgresServer

TABLES = [RateLimitHits.metadata.tables[name] for name in ("rate_limit_hits", "sign_in_failures")]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 1, 3, 13, 0, tzinfo=UTC))


def shared_counts(url: str) -> SharedCounts:
    engine = make_engine(url)
    RateLimitHits.metadata.create_all(engine, tables=TABLES)
    return SharedCounts(engine)


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
def counts(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Counts]:
    """This process's memory, or a database (on each backend) that processes share."""
    if request.param == "memory":
        yield MemoryCounts()
        return
    if request.param == "sqlite":
        shared = shared_counts(f"sqlite:///{tmp_path / 'limits.db'}")
        yield shared
        shared.engine.dispose()
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        shared = shared_counts(url)
        yield shared
        shared.engine.dispose()


def throttle(clock: ManualClock, counts: Counts, **limits: object) -> Throttle:
    return Throttle.from_settings(Settings.model_validate(limits), clock, counts)


def test_a_login_is_limited_across_addresses(clock: ManualClock, counts: Counts) -> None:
    limited = throttle(clock, counts, rate_limit_sign_in="3/hour")
    for address in ("192.0.2.1", "192.0.2.2", "192.0.2.3"):
        limited.hit(Action.SIGN_IN, address, "Olivia")
    with pytest.raises(TooManyRequests) as refused:
        limited.hit(Action.SIGN_IN, "192.0.2.4", " olivia ")
    assert 0 < refused.value.retry_after <= 3600
    limited.hit(Action.SIGN_IN, "192.0.2.4", "oscar")  # another login, another address


def test_accounts_and_actions_are_counted_apart(clock: ManualClock, counts: Counts) -> None:
    limited = throttle(clock, counts, rate_limit_upload="1/hour", rate_limit_diagnostics="1/hour")
    alice, bob = uuid.uuid4(), uuid.uuid4()
    limited.hit(Action.UPLOAD, "192.0.2.1", alice)
    limited.hit(Action.DIAGNOSTICS, "192.0.2.1", alice)
    limited.hit(Action.UPLOAD, "192.0.2.2", bob)
    with pytest.raises(TooManyRequests, match="too many upload requests"):
        limited.hit(Action.UPLOAD, "192.0.2.3", alice)


def test_a_window_moves_with_the_injected_clock(clock: ManualClock, counts: Counts) -> None:
    """An accelerated clock (the demo, the simulator) runs the limits as fast as the rounds."""
    limited = throttle(clock, counts, rate_limit_upload="2/hour")
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
    clock: ManualClock, counts: Counts
) -> None:
    guard = throttle(
        clock,
        counts,
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


def test_processes_sharing_a_database_share_the_limit(
    clock: ManualClock, database_url: str
) -> None:
    """Two web processes (two throttles, each with its own connections) hit at once: the
    client gets the limit once, not once per process."""
    processes = [throttle(clock, shared_counts(database_url), rate_limit_upload="5/hour")]
    processes.append(throttle(clock, shared_counts(database_url), rate_limit_upload="5/hour"))
    account = uuid.uuid4()
    start = threading.Barrier(12)
    answered: list[bool] = []

    def upload(limited: Throttle) -> None:
        start.wait()
        try:
            limited.hit(Action.UPLOAD, None, account)
            answered.append(True)
        except TooManyRequests:
            answered.append(False)

    threads = [threading.Thread(target=upload, args=(processes[n % 2],)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(answered) == [False] * 7 + [True] * 5

    processes[0].sign_in_failed("192.0.2.1", "olivia")  # the defaults: 5 free failures
    for _ in range(5):
        processes[1].sign_in_failed("192.0.2.2", "olivia")
    with pytest.raises(TooManyRequests, match="failed sign-ins"):
        processes[0].check_sign_in("192.0.2.3", "olivia")
    for limited in processes:
        assert isinstance(limited.counts, SharedCounts)
        limited.counts.engine.dispose()


def test_shared_counts_prune_what_counts_nothing(clock: ManualClock, tmp_path: Path) -> None:
    counts = shared_counts(f"sqlite:///{tmp_path / 'limits.db'}")
    limited = throttle(clock, counts, rate_limit_upload="2/hour", rate_limit_sign_up="1/day")
    for attempt in range(3):
        limited.hit(Action.UPLOAD, None, uuid.uuid4())
        limited.sign_in_failed(None, f"login{attempt}")
    limited.hit(Action.SIGN_UP, "192.0.2.9")

    def rows() -> tuple[int | None, int | None]:
        with transaction(counts.sessions) as session:
            hits = session.scalar(select(func.count()).select_from(RateLimitHits))
            failures = session.scalar(select(func.count()).select_from(SignInFailures))
        return hits, failures

    clock.advance(max(PRUNE_EVERY, timedelta(hours=2)))
    limited.hit(Action.UPLOAD, None, "still counted")
    assert rows() == (2, 3)  # the uploads' hour has passed; the sign-up's day has not
    with pytest.raises(TooManyRequests):
        limited.hit(Action.SIGN_UP, "192.0.2.9")

    clock.advance(timedelta(days=1))
    limited.hit(Action.UPLOAD, None, "still counted")
    assert rows() == (1, 0)
    counts.engine.dispose()


def test_counts_for_a_database(tmp_path: Path) -> None:
    """A SQLite file's counts go in a file beside it; an in-memory database's in memory."""
    counts = SharedCounts.for_database(f"sqlite:///{tmp_path / 'crowdquant.db'}")
    assert isinstance(counts, SharedCounts)
    counts.engine.dispose()
    assert (tmp_path / "crowdquant-limits.db").is_file()
    assert isinstance(SharedCounts.for_database("sqlite://"), MemoryCounts)
