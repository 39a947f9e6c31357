"""Sending webhook deliveries: signed, retried with backoff, each attempt sent once.

A `WebhookWorker` claims one due delivery at a time (`claim_delivery`: a compare-and-set on
its attempt count and lease, so two workers never send the same attempt, and a delivery
whose worker died is claimed again once its lease has run out, as its next attempt), then
POSTs its JSON body to the webhook's URL:

    {"triggerId": ..., "tournament": 8, "roundNumber": 12, "modelId": ..., "modelName": ...}

signed in the ``X-Crowdquant-Signature`` header as ``t=<unix time>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the webhook's secret>``. The URL's host is resolved and checked again
before each attempt, and the request goes to the checked address (with the URL's host in
the ``Host`` header and, for https, in TLS), so a host that resolves elsewhere by then is not
called. Redirects are not followed. A 2xx answer delivers it; anything else is retried after
`backoff`, doubled each time, until `max_attempts`, then it failed (as it does once its round
has closed, or its webhook was removed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.lease import take_row_lease
from crowdquant.db.models import RoundStatus, WebhookDelivery, WebhookDeliveryStatus
from crowdquant.db.session import transaction
from crowdquant.settings import Settings
from crowdquant.tournament.webhooks import Target, WebhookRefused, WebhookTargets, webhook_of

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Crowdquant-Signature"
LEASE_MARGIN = timedelta(seconds=30)
"""A claim lasts the attempt's timeout and this."""
MAX_ERROR_CHARACTERS = 500


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp`."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def signature_matches(secret: str, header: str, body: bytes) -> bool:
    """Whether `header` is a valid signature of `body` under `secret` (what a receiver checks)."""
    fields = dict(part.partition("=")[::2] for part in header.split(","))
    try:
        timestamp = int(fields.get("t", ""))
    except ValueError:
        return False
    return hmac.compare_digest(
        sign(secret, timestamp, body), f"t={timestamp},v1={fields.get('v1', '')}"
    )


@dataclass(frozen=True)
class WebhookPolicy:
    """How hard deliveries are tried (`Settings.webhook_*`)."""

    timeout_seconds: float = 10.0
    max_attempts: int = 5
    backoff_seconds: float = 30.0

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookPolicy:
        return cls(
            timeout_seconds=settings.webhook_timeout_seconds,
            max_attempts=settings.webhook_max_attempts,
            backoff_seconds=settings.webhook_backoff_seconds,
        )

    def backoff(self, attempts: int) -> timedelta:
        """The wait after the failed attempt number `attempts` (1 for the first)."""
        return timedelta(seconds=self.backoff_seconds * 2 ** (attempts - 1))


def claim_delivery(
    sessions: sessionmaker[Session], worker: str, now: datetime, lease: timedelta
) -> tuple[uuid.UUID, int] | None:
    """Claim the oldest due delivery for `worker` until `now + lease`: its id and the attempt
    number claimed; None if none is due."""
    with transaction(sessions) as session:
        due = session.execute(
            select(WebhookDelivery.id, WebhookDelivery.attempts, WebhookDelivery.lease_expires_at)
            .where(
                WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(
                    WebhookDelivery.lease_expires_at.is_(None),
                    WebhookDelivery.lease_expires_at < now,
                ),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(10)
        ).all()
    for delivery_id, attempts, expires in due:
        with transaction(sessions) as session:
            if take_row_lease(
                session,
                WebhookDelivery,
                delivery_id,
                expires,
                WebhookDelivery.status == WebhookDeliveryStatus.PENDING,
                WebhookDelivery.attempts == attempts,
                lease_holder=worker,
                lease_expires_at=now + lease,
                attempts=attempts + 1,
            ):
                return delivery_id, attempts + 1
    return None


@dataclass(frozen=True)
class _Attempt:
    delivery_id: uuid.UUID
    number: int
    url: str
    secret: str
    body: bytes


@dataclass(frozen=True)
class _Outcome:
    delivered: bool
    response_code: int | None = None
    error: str | None = None


class WebhookWorker:
    """Sends webhook deliveries, one attempt at a time."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        targets: WebhookTargets,
        *,
        policy: WebhookPolicy | None = None,
        name: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.sessions, self.clock, self.targets = sessions, clock, targets
        self.policy = policy or WebhookPolicy()
        self.name = name or f"webhooks-{uuid.uuid4().hex[:12]}"
        self.transport = transport
        self.lease = timedelta(seconds=self.policy.timeout_seconds) + LEASE_MARGIN

    def run_once(self) -> uuid.UUID | None:
        """Claim one due delivery and make its attempt; its id, or None if none was due."""
        claimed = claim_delivery(self.sessions, self.name, self.clock.now(), self.lease)
        if claimed is None:
            return None
        delivery_id, number = claimed
        attempt = self._attempt(delivery_id, number)
        if attempt is not None:
            self._record(attempt, self._send(attempt))
        return delivery_id

    def run_until_idle(self) -> list[uuid.UUID]:
        """`run_once` until no delivery is due; the deliveries tried, in order."""
        tried = []
        while (delivery_id := self.run_once()) is not None:
            tried.append(delivery_id)
        return tried

    def run_forever(self, stop: threading.Event, poll_seconds: float = 2.0) -> None:
        """Send deliveries until `stop` is set, looking for due ones every `poll_seconds`."""
        while not stop.is_set():
            try:
                tried = self.run_once()
            except Exception:
                logger.exception("a webhook delivery could not be sent; trying again")
                tried = None
            if tried is None:
                stop.wait(poll_seconds)

    def _attempt(self, delivery_id: uuid.UUID, number: int) -> _Attempt | None:
        with transaction(self.sessions) as session:
            delivery = session.get_one(WebhookDelivery, delivery_id)
            webhook = webhook_of(session, delivery.model)
            round_ = delivery.round_
            why = None
            if webhook is None:
                why = "the webhook was removed"
            elif number > self.policy.max_attempts:
                why = f"its worker stopped {self.policy.max_attempts} times while sending it"
            elif round_ is not None and round_.status is not RoundStatus.OPEN:
                why = f"round {round_.number} closed before it was delivered"
            if why is not None or webhook is None:
                _end(delivery, WebhookDeliveryStatus.FAILED, self.clock.now(), None, why)
                return None
            payload: dict[str, Any] = {
                "triggerId": delivery.trigger_id,
                "tournament": delivery.model.tournament.number,
                "roundNumber": None if round_ is None else round_.number,
                "modelId": str(delivery.model_id),
                "modelName": delivery.model.name,
            }
            body = json.dumps(payload, separators=(",", ":")).encode()
            delivery.url = webhook.url  # the owner may have changed it since
            return _Attempt(delivery_id, number, webhook.url, webhook.secret, body)

    def _send(self, attempt: _Attempt) -> _Outcome:
        try:
            target = self.targets.check(attempt.url)
        except WebhookRefused as exc:
            return _Outcome(delivered=False, error=exc.message)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "crowdquant-webhooks",
            SIGNATURE_HEADER: sign(attempt.secret, int(time.time()), attempt.body),
            "X-Crowdquant-Attempt": str(attempt.number),
        }
        url, extensions = _pinned(target)
        headers["Host"] = _host_header(target)
        try:
            with (
                httpx.Client(
                    timeout=self.policy.timeout_seconds,
                    follow_redirects=False,
                    transport=self.transport,
                    trust_env=False,
                ) as client,
                client.stream(
                    "POST", url, content=attempt.body, headers=headers, extensions=extensions
                ) as response,
            ):
                code = response.status_code
        except httpx.HTTPError as exc:
            return _Outcome(
                delivered=False, error=f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARACTERS]
            )
        if 200 <= code < 300:
            return _Outcome(delivered=True, response_code=code)
        return _Outcome(delivered=False, response_code=code, error=f"answered HTTP {code}")

    def _record(self, attempt: _Attempt, outcome: _Outcome) -> None:
        with transaction(self.sessions) as session:
            delivery = session.get_one(WebhookDelivery, attempt.delivery_id)
            if delivery.lease_holder != self.name or delivery.attempts != attempt.number:
                return  # taken over: that worker records its own attempt
            now = self.clock.now()
            delivery.response_code = outcome.response_code
            if outcome.delivered:
                _end(delivery, WebhookDeliveryStatus.DELIVERED, now, outcome.response_code, None)
            elif attempt.number >= self.policy.max_attempts:
                _end(
                    delivery,
                    WebhookDeliveryStatus.FAILED,
                    now,
                    outcome.response_code,
                    outcome.error,
                )
            else:
                delivery.error = outcome.error
                delivery.next_attempt_at = now + self.policy.backoff(attempt.number)
                delivery.lease_holder, delivery.lease_expires_at = None, None


def _end(
    delivery: WebhookDelivery,
    status: WebhookDeliveryStatus,
    now: datetime,
    response_code: int | None,
    error: str | None,
) -> None:
    delivery.status, delivery.finished_at = status, now
    delivery.response_code, delivery.error = response_code, error
    delivery.lease_holder, delivery.lease_expires_at = None, None


def _pinned(target: Target) -> tuple[str, dict[str, Any]]:
    """The URL with its host replaced by the checked address, and the TLS server name."""
    url = httpx.URL(target.url).copy_with(host=str(target.addresses[0]), port=target.port)
    extensions: dict[str, Any] = {}
    if target.scheme == "https":
        extensions["sni_hostname"] = target.host
    return str(url), extensions


def _host_header(target: Target) -> str:
    default = 443 if target.scheme == "https" else 80
    host = f"[{target.host}]" if ":" in target.host else target.host
    return host if target.port == default else f"{host}:{target.port}"
