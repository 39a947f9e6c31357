"""Abuse limits: how often one client address or one account may do a costly or guessable
thing, and growing waits after failed sign-ins.

Rate limits are moving windows counted on the injected clock (so an accelerated clock runs
them as fast as it runs the rounds), one limit per action (``Settings.rate_limit_*``, in the
`limits` library's notation: ``"10/minute"``), kept apart per client address and per
account. Failed sign-ins are counted per address and per login: after
`sign_in_free_failures` of them, every attempt (the right password included) is refused
until a wait has passed that doubles with each further failure, up to `sign_in_max_delay`.
Waits are measured on the injected clock; a success clears the login's count.

The counts live in this process's memory (`MemoryCounts`), or, when several processes serve
one database, in the database (`SharedCounts`), so that a client gets the limit once, not
once per process.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from threading import Lock
from typing import Protocol, TypeVar
from uuid import UUID

from limits import RateLimitItem, parse
from sqlalchemy import Engine, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.schema import CreateIndex, CreateTable

from crowdquant.clock import Clock
from crowdquant.db.models import RateLimitHits, SignInFailures
from crowdquant.db.session import (
    BUSY_RETRIES,
    is_busy,
    make_engine,
    retry_pause,
    session_factory,
    take_write_lock,
    transaction,
)
from crowdquant.settings import Settings

T = TypeVar("T")

MAX_TRACKED = 100_000
"""How many addresses, accounts and logins the memory keeps before forgetting settled ones."""
PRUNE_EVERY = timedelta(minutes=10)
"""How often (on the injected clock) the shared counts delete rows that count nothing."""
FAILURES_KEPT = timedelta(days=1)
"""How long the shared counts keep a settled sign-in failure count after its last failure."""


class Action(StrEnum):
    SIGN_IN = "sign_in"
    SIGN_UP = "sign_up"
    API_KEY = "api_key"
    UPLOAD = "upload"
    DIAGNOSTICS = "diagnostics"


class TooManyRequests(Exception):  # noqa: N818  (the HTTP status's own name)
    """Refused for now: try again in `retry_after` seconds."""

    code = "too_many_requests"

    def __init__(self, retry_after: int, message: str) -> None:
        self.retry_after = max(1, retry_after)
        self.message = f"{message}: try again in {self.retry_after} s"
        super().__init__(self.message)


Delay = Callable[[int], timedelta | None]
"""The wait after a key's n-th failed sign-in (None: no wait yet)."""


class Counts(Protocol):
    """Where the hits and failures are counted; each call is atomic across its users."""

    def hit(self, key: str, now: datetime, window: timedelta, limit: int) -> datetime | None:
        """Count a hit at `now`, unless `limit` hits already fall within `window` before it:
        then nothing is counted and the oldest of them is returned."""
        ...

    def fail(self, key: str, now: datetime, delay: Delay) -> None:
        """Count a failed sign-in; past `delay`'s free ones, block until now + the delay."""
        ...

    def blocked_until(self, key: str, now: datetime) -> datetime | None:
        """Until when `key` waits, if it waits beyond `now`."""
        ...

    def clear(self, key: str) -> None:
        """Forget `key`'s failures."""
        ...


@dataclass
class _Failures:
    count: int = 0
    blocked_until: datetime | None = None


@dataclass
class MemoryCounts:
    """The counts of one process, in its memory."""

    _hits: dict[str, deque[datetime]] = field(default_factory=dict)
    """Per action and client, the times of its hits within the action's window, oldest first."""
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _longest: timedelta = timedelta(0)
    _lock: Lock = field(default_factory=Lock)

    def hit(self, key: str, now: datetime, window: timedelta, limit: int) -> datetime | None:
        with self._lock:
            self._longest = max(self._longest, window)
            if len(self._hits) >= MAX_TRACKED:
                self._forget_quiet_clients(now)
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - window:
                hits.popleft()
            if len(hits) >= limit:
                return hits[0]
            hits.append(now)
            return None

    def fail(self, key: str, now: datetime, delay: Delay) -> None:
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_settled(now)
            found = self._failures.setdefault(key, _Failures())
            found.count += 1
            wait = delay(found.count)
            if wait is not None:
                found.blocked_until = now + wait

    def blocked_until(self, key: str, now: datetime) -> datetime | None:
        with self._lock:
            found = self._failures.get(key)
        if found is None or found.blocked_until is None or found.blocked_until <= now:
            return None
        return found.blocked_until

    def clear(self, key: str) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _forget_settled(self, now: datetime) -> None:
        settled = [
            key
            for key, found in self._failures.items()
            if found.blocked_until is None or found.blocked_until <= now
        ]
        for key in settled:
            del self._failures[key]

    def _forget_quiet_clients(self, now: datetime) -> None:
        quiet = [
            key for key, hits in self._hits.items() if not hits or hits[-1] <= now - self._longest
        ]
        for key in quiet:
            del self._hits[key]


class SharedCounts:
    """The counts in a database that every process serving the platform reaches: each call
    one short transaction that locks its key's row. Keys are stored hashed."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.sessions = session_factory(engine)
        self._pruned_at: datetime | None = None

    @classmethod
    def for_database(cls, url: str) -> Counts:
        """Counts beside the database at `url`. PostgreSQL: its tables there, on a small
        pool of their own. A SQLite file: a file of their own beside it, since a writing
        request holds the whole file's write lock while it is throttled. SQLite in memory
        (one process): this process's memory."""
        parsed = make_url(url)
        if parsed.get_backend_name() != "sqlite":
            return cls(make_engine(parsed, pool_size=2, max_overflow=8))
        database = parsed.database
        if database in (None, "", ":memory:") or parsed.query.get("mode") == "memory":
            return MemoryCounts()
        path = Path(database)
        engine = make_engine(parsed.set(database=str(path.with_name(f"{path.stem}-limits.db"))))
        with engine.begin() as connection:  # as other processes starting may do at once
            for model in (RateLimitHits, SignInFailures):
                table = RateLimitHits.metadata.tables[model.__tablename__]
                connection.execute(CreateTable(table, if_not_exists=True))
                for index in table.indexes:
                    connection.execute(CreateIndex(index, if_not_exists=True))
        return cls(engine)

    def hit(self, key: str, now: datetime, window: timedelta, limit: int) -> datetime | None:
        def count(session: Session) -> datetime | None:
            row = _locked(session, RateLimitHits, _digest(key), hits=[], expires_at=now)
            hits = [at for at in map(datetime.fromisoformat, row.hits) if at > now - window]
            if len(hits) >= limit:
                return hits[0]
            row.hits = [at.isoformat() for at in (*hits, now)]
            row.expires_at = now + window
            return None

        oldest = self._run(count)
        self._prune(now)
        return oldest

    def fail(self, key: str, now: datetime, delay: Delay) -> None:
        def count(session: Session) -> None:
            row = _locked(
                session, SignInFailures, _digest(key), failures=0, blocked_until=None, failed_at=now
            )
            row.failures += 1
            row.failed_at = now
            wait = delay(row.failures)
            if wait is not None:
                row.blocked_until = now + wait

        self._run(count)

    def blocked_until(self, key: str, now: datetime) -> datetime | None:
        with transaction(self.sessions) as session:
            until = session.scalar(
                select(SignInFailures.blocked_until).where(SignInFailures.key == _digest(key))
            )
        return until if until is not None and until > now else None

    def clear(self, key: str) -> None:
        def forget(session: Session) -> None:
            session.execute(delete(SignInFailures).where(SignInFailures.key == _digest(key)))

        self._run(forget)

    def _prune(self, now: datetime) -> None:
        """At most every `PRUNE_EVERY`: delete the rows that no longer count anything."""
        if self._pruned_at is not None and now - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = now

        def prune(session: Session) -> None:
            session.execute(delete(RateLimitHits).where(RateLimitHits.expires_at <= now))
            session.execute(
                delete(SignInFailures).where(
                    SignInFailures.failed_at <= now - FAILURES_KEPT,
                    SignInFailures.blocked_until.is_(None) | (SignInFailures.blocked_until <= now),
                )
            )

        self._run(prune)

    def _run(self, work: Callable[[Session], T]) -> T:
        """`work` in one writing transaction, run again while the database asks for it."""
        for attempt in range(1, BUSY_RETRIES + 1):
            try:
                with transaction(self.sessions) as session:
                    take_write_lock(session)
                    return work(session)
            except DBAPIError as exc:
                if attempt == BUSY_RETRIES or not is_busy(exc):
                    raise
                time.sleep(retry_pause(attempt))
        raise AssertionError("unreachable: the last attempt returns or raises")


R = TypeVar("R", RateLimitHits, SignInFailures)


def _locked(session: Session, model: type[R], key: str, **fresh: object) -> R:
    """`model`'s row for `key` (made with `fresh` values if missing), locked until commit."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(model)
        .values(key=key, **fresh)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    return session.scalars(
        select(model)
        .where(model.key == key)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Throttle:
    """The rate limits and sign-in waits of one app."""

    clock: Clock
    limits: dict[Action, RateLimitItem]
    sign_in_free_failures: int
    sign_in_first_delay: timedelta
    sign_in_max_delay: timedelta
    counts: Counts = field(default_factory=MemoryCounts)

    @classmethod
    def from_settings(
        cls, settings: Settings, clock: Clock, counts: Counts | None = None
    ) -> Throttle:
        """The limits `settings` name, counted in `counts` (by default this process's memory)."""
        return cls(
            clock=clock,
            limits={
                Action.SIGN_IN: parse(settings.rate_limit_sign_in),
                Action.SIGN_UP: parse(settings.rate_limit_sign_up),
                Action.API_KEY: parse(settings.rate_limit_api_key),
                Action.UPLOAD: parse(settings.rate_limit_upload),
                Action.DIAGNOSTICS: parse(settings.rate_limit_diagnostics),
            },
            sign_in_free_failures=settings.sign_in_free_failures,
            sign_in_first_delay=timedelta(seconds=settings.sign_in_first_delay_seconds),
            sign_in_max_delay=timedelta(seconds=settings.sign_in_max_delay_seconds),
            counts=counts or MemoryCounts(),
        )

    def hit(self, action: Action, address: str | None, account: UUID | str | None = None) -> None:
        """Count one `action` by `address` and by `account` (an id, or the login a sign-in
        names); `TooManyRequests` past a limit."""
        item = self.limits[action]
        window = timedelta(seconds=item.get_expiry())
        if isinstance(account, str):
            account = account.strip().lower()
        now = self.clock.now()
        for who in (f"address:{address}", f"account:{account}"):
            if who.endswith(":None"):
                continue
            oldest = self.counts.hit(f"{action.value}:{who}", now, window, item.amount)
            if oldest is not None:
                wait = math.ceil((oldest + window - now).total_seconds())
                raise TooManyRequests(wait, f"too many {action.value.replace('_', '-')} requests")

    def check_sign_in(self, address: str | None, login: str) -> None:
        """Refuse a sign-in while its address or login waits after failures."""
        now = self.clock.now()
        waits = [
            until - now
            for key in self._sign_in_keys(address, login)
            if (until := self.counts.blocked_until(key, now)) is not None
        ]
        if waits:
            raise TooManyRequests(math.ceil(max(waits).total_seconds()), "too many failed sign-ins")

    def sign_in_failed(self, address: str | None, login: str) -> None:
        """Count a failure; past the free ones, start a wait twice as long as the last."""
        now = self.clock.now()
        for key in self._sign_in_keys(address, login):
            self.counts.fail(key, now, self._delay)

    def sign_in_succeeded(self, login: str) -> None:
        """The login's failures are forgotten (its address's stay counted)."""
        self.counts.clear(f"login:{login.strip().lower()}")

    def _delay(self, failures: int) -> timedelta | None:
        beyond = failures - self.sign_in_free_failures
        if beyond <= 0:
            return None
        delay: timedelta = self.sign_in_first_delay * 2 ** min(beyond - 1, 32)
        return min(delay, self.sign_in_max_delay)

    def _sign_in_keys(self, address: str | None, login: str) -> list[str]:
        keys = [f"login:{login.strip().lower()}"]
        return keys if address is None else [*keys, f"address:{address}"]
