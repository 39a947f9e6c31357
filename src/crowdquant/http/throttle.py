"""Abuse limits: how often one client address or one account may do a costly or guessable
thing, and growing waits after failed sign-ins.

Rate limits are moving windows counted in this process's memory on the injected clock (so
an accelerated clock runs them as fast as it runs the rounds), one limit per action
(``Settings.rate_limit_*``, in the `limits` library's notation: ``"10/minute"``), kept
apart per client address and per account. Failed sign-ins are counted per address and per
login: after `sign_in_free_failures` of them, every attempt (the right password included)
is refused until a wait has passed that doubles with each further failure, up to
`sign_in_max_delay`. Waits are measured on the injected clock; a success clears the
login's count. Several web processes each keep their own counts.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from threading import Lock
from uuid import UUID

from limits import RateLimitItem, parse

from crowdquant.clock import Clock
from crowdquant.settings import Settings

MAX_TRACKED = 100_000
"""How many addresses, accounts and logins the counts keep before forgetting settled ones."""


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


@dataclass
class _Failures:
    count: int = 0
    blocked_until: datetime | None = None


@dataclass
class Throttle:
    """The rate limits and sign-in waits of one app."""

    clock: Clock
    limits: dict[Action, RateLimitItem]
    sign_in_free_failures: int
    sign_in_first_delay: timedelta
    sign_in_max_delay: timedelta
    _hits: dict[str, deque[datetime]] = field(default_factory=dict)
    """Per action and client, the times of its hits within the action's window, oldest first."""
    _failures: dict[str, _Failures] = field(default_factory=dict)
    _lock: Lock = field(default_factory=Lock)

    @classmethod
    def from_settings(cls, settings: Settings, clock: Clock) -> Throttle:
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
        )

    def hit(self, action: Action, address: str | None, account: UUID | str | None = None) -> None:
        """Count one `action` by `address` and by `account` (an id, or the login a sign-in
        names); `TooManyRequests` past a limit."""
        item = self.limits[action]
        window = timedelta(seconds=item.get_expiry())
        if isinstance(account, str):
            account = account.strip().lower()
        now = self.clock.now()
        with self._lock:
            if len(self._hits) >= MAX_TRACKED:
                self._forget_quiet_clients(now)
            for who in (f"address:{address}", f"account:{account}"):
                if who.endswith(":None"):
                    continue
                hits = self._hits.setdefault(f"{action.value}:{who}", deque())
                while hits and hits[0] <= now - window:
                    hits.popleft()
                if len(hits) >= item.amount:
                    wait = math.ceil((hits[0] + window - now).total_seconds())
                    raise TooManyRequests(
                        wait, f"too many {action.value.replace('_', '-')} requests"
                    )
                hits.append(now)

    def check_sign_in(self, address: str | None, login: str) -> None:
        """Refuse a sign-in while its address or login waits after failures."""
        now = self.clock.now()
        with self._lock:
            waits = [
                found.blocked_until - now
                for key in self._sign_in_keys(address, login)
                if (found := self._failures.get(key)) is not None
                and found.blocked_until is not None
                and found.blocked_until > now
            ]
        if waits:
            raise TooManyRequests(math.ceil(max(waits).total_seconds()), "too many failed sign-ins")

    def sign_in_failed(self, address: str | None, login: str) -> None:
        """Count a failure; past the free ones, start a wait twice as long as the last."""
        now = self.clock.now()
        with self._lock:
            if len(self._failures) >= MAX_TRACKED:
                self._forget_settled(now)
            for key in self._sign_in_keys(address, login):
                found = self._failures.setdefault(key, _Failures())
                found.count += 1
                beyond = found.count - self.sign_in_free_failures
                if beyond > 0:
                    delay = self.sign_in_first_delay * 2 ** min(beyond - 1, 32)
                    found.blocked_until = now + min(delay, self.sign_in_max_delay)

    def sign_in_succeeded(self, login: str) -> None:
        """The login's failures are forgotten (its address's stay counted)."""
        with self._lock:
            self._failures.pop(f"login:{login.strip().lower()}", None)

    def _sign_in_keys(self, address: str | None, login: str) -> list[str]:
        keys = [f"login:{login.strip().lower()}"]
        return keys if address is None else [*keys, f"address:{address}"]

    def _forget_settled(self, now: datetime) -> None:
        settled = [
            key
            for key, found in self._failures.items()
            if found.blocked_until is None or found.blocked_until <= now
        ]
        for key in settled:
            del self._failures[key]

    def _forget_quiet_clients(self, now: datetime) -> None:
        longest = max(timedelta(seconds=item.get_expiry()) for item in self.limits.values())
        quiet = [key for key, hits in self._hits.items() if not hits or hits[-1] <= now - longest]
        for key in quiet:
            del self._hits[key]
