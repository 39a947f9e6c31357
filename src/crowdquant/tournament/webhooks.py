"""Submission webhooks: a URL a model's owner registers, called with a trigger id when a round
opens; the upload made from that trigger id is linked to its delivery.

A webhook's URL is checked when it is set and again before every attempt
(`WebhookTargets.check`): http or https, at most `MAX_URL_LENGTH` characters, no user name or
password, and every address its host resolves to outside the operator's denied networks and
the server's own addresses (unless in an allowed network), so that a webhook cannot reach into
the server's private network. `check_webhook_allowed` is the one place that says whether a model
may use a webhook at all.

`queue_deliveries` adds a delivery per model with a webhook when a round opens (the scheduler
does it in the transaction that opens the round); `trigger_by_hand` adds one at once
(numerapi's ``triggerModelWebhook``). `tournament/webhook_worker.py` sends them.
"""

from __future__ import annotations

import ipaddress
import secrets
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.db.models import (
    Account,
    Model,
    ModelWebhook,
    Round,
    RoundStatus,
    Submission,
    WebhookDelivery,
)
from crowdquant.settings import DENIED_WEBHOOK_NETWORKS, Settings
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.rounds import current_round
from crowdquant.tournament.submissions import own_submission_refusal

MAX_URL_LENGTH = 2048
ROUND_OPENED = "round opened"
BY_HAND = "by hand"
LATEST_DELIVERIES = 10
"""Deliveries the model's page shows."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class WebhookRefused(ServiceError):  # noqa: N818
    code = "webhook_refused"


class UnknownTrigger(ServiceError):  # noqa: N818
    code = "unknown_trigger"


RESOLVE_SECONDS = 3.0
"""How long a host name may take to resolve (a request waits for it)."""


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to (an address resolves to itself), within
    `RESOLVE_SECONDS`; `OSError` if it does not."""
    answer: list[Any] = []

    def lookup() -> None:
        try:
            answer.append(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except Exception as exc:  # a name getaddrinfo refuses (too long, a NUL): unresolvable
            answer.append(OSError(str(exc)))

    # a daemon thread: a lookup that hangs is left behind, not waited for
    thread = threading.Thread(target=lookup, name="crowdquant-resolve", daemon=True)
    thread.start()
    thread.join(RESOLVE_SECONDS)
    if not answer:
        raise OSError(f"{host} took over {RESOLVE_SECONDS} s to resolve")
    if isinstance(answer[0], Exception):
        raise answer[0]
    return list(dict.fromkeys(str(entry[4][0]) for entry in answer[0]))


@cache
def own_addresses() -> frozenset[Address]:
    """This machine's addresses, as far as its host name says, and the unspecified ones."""
    found: set[Address] = {ipaddress.ip_address("0.0.0.0"), ipaddress.ip_address("::")}
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            found.update(_address(text) for text in resolve_host(name, 0))
        except (OSError, ValueError):
            continue
    return frozenset(found)


def _address(text: str) -> Address:
    address = ipaddress.ip_address(text.partition("%")[0])  # no IPv6 zone
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class Target:
    """A checked webhook URL and the addresses its host resolved to, all allowed."""

    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[Address, ...]


@dataclass(frozen=True)
class WebhookTargets:
    """Where webhooks may be sent: the operator's denied and allowed networks
    (`Settings.webhook_*_networks`) and this machine's own addresses."""

    denied: tuple[Network, ...]
    allowed: tuple[Network, ...] = ()
    own: frozenset[Address] = field(default_factory=frozenset)
    resolve: Callable[[str, int], list[str]] = resolve_host

    @classmethod
    def from_settings(cls, settings: Settings) -> WebhookTargets:
        return cls(
            denied=tuple(settings.webhook_denied_networks),
            allowed=tuple(settings.webhook_allowed_networks),
            own=own_addresses(),
        )

    @classmethod
    def default(cls) -> WebhookTargets:
        """The default denied networks and this machine's addresses."""
        denied = tuple(ipaddress.ip_network(network) for network in DENIED_WEBHOOK_NETWORKS)
        return cls(denied=denied, own=own_addresses())

    def refusal(self, address: Address) -> str | None:
        """Why `address` may not be reached, or None if it may."""
        if any(
            address in network for network in self.allowed if address.version == network.version
        ):
            return None
        for network in self.denied:
            if address.version == network.version and address in network:
                return f"{address} is in the denied network {network}"
        if address in self.own:
            return f"{address} is this server's own address"
        return None

    def check(self, url: str) -> Target:
        """`url` parsed, its host resolved and every address checked; `WebhookRefused` naming
        what is wrong otherwise."""
        scheme, host, port = _parse(url)
        try:
            addresses = tuple(dict.fromkeys(_address(text) for text in self.resolve(host, port)))
        except (OSError, UnicodeError, ValueError):
            raise WebhookRefused(f"the webhook's host {host!r} could not be resolved") from None
        if not addresses:
            raise WebhookRefused(f"the webhook's host {host!r} could not be resolved")
        for address in addresses:
            why = self.refusal(address)
            if why is not None:
                raise WebhookRefused(f"the webhook's host {host!r} may not be called: {why}")
        return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)

    def resolved_first(self, url: str | None) -> WebhookTargets:
        """These targets with `url`'s host looked up now, so that checking `url` with them
        (`set_webhook`) looks nothing up: a request resolves the host before it takes the
        database's write lock. The check's answer is the same either way."""
        try:
            _, host, port = _parse((url or "").strip())
            found: list[str] | OSError = self.resolve(host, port)
        except WebhookRefused:
            return self  # refused before any lookup
        except (OSError, UnicodeError, ValueError) as exc:
            found = OSError(str(exc))

        def resolve(asked: str, asked_port: int) -> list[str]:
            if (asked, asked_port) != (host, port):
                raise OSError(f"{asked} was not looked up first")
            if isinstance(found, OSError):
                raise found
            return found

        return replace(self, resolve=resolve)


def _parse(url: str) -> tuple[str, str, int]:
    """The scheme, host and port of a webhook URL; `WebhookRefused` naming what is wrong."""
    if len(url) > MAX_URL_LENGTH:
        raise WebhookRefused(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookRefused(f"the webhook URL is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise WebhookRefused("the webhook URL must start with http:// or https://")
    if parts.username is not None or parts.password is not None:
        raise WebhookRefused("the webhook URL may not carry a user name or password")
    host = parts.hostname
    if not host:
        raise WebhookRefused("the webhook URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def check_webhook_allowed(session: Session, model: Model) -> None:
    """Whether `model` may use a webhook at all: `WebhookRefused` saying why not (the reason
    its owner may not send predictions: a closed-live tournament, or an uploaded model)."""
    reason = own_submission_refusal(session, model)
    if reason is not None:
        raise WebhookRefused(f"no webhook: {reason}")


def webhook_of(session: Session, model: Model) -> ModelWebhook | None:
    return session.scalar(select(ModelWebhook).where(ModelWebhook.model_id == model.id))


def set_webhook(
    session: Session,
    clock: Clock,
    targets: WebhookTargets,
    account: Account,
    model_id: uuid.UUID | str,
    url: str | None,
) -> ModelWebhook | None:
    """Register `url` as the webhook of `account`'s model `model_id`, or remove it when `url`
    is empty. A new webhook gets a fresh signing secret; a changed URL keeps it."""
    model = get_own_model(session, account, model_id)
    existing = webhook_of(session, model)
    url = (url or "").strip()
    if not url:
        if existing is not None:
            session.delete(existing)
            session.flush()
        return None
    check_webhook_allowed(session, model)
    targets.check(url)
    now = clock.now()
    if existing is None:
        existing = ModelWebhook(
            model_id=model.id, url=url, secret=new_secret(), created_at=now, updated_at=now
        )
        session.add(existing)
    else:
        existing.url, existing.updated_at = url, now
    session.flush()
    return existing


def new_secret() -> str:
    return f"whsec_{secrets.token_urlsafe(32)}"


def new_secret_for(
    session: Session, clock: Clock, account: Account, model_id: uuid.UUID | str
) -> ModelWebhook:
    """A fresh signing secret for the webhook of `account`'s model `model_id`."""
    model = get_own_model(session, account, model_id)
    webhook = webhook_of(session, model)
    if webhook is None:
        raise WebhookRefused(f"model {model.name!r} has no webhook")
    webhook.secret, webhook.updated_at = new_secret(), clock.now()
    session.flush()
    return webhook


def _delivery(
    webhook: ModelWebhook, round_: Round | None, reason: str, now: datetime
) -> WebhookDelivery:
    return WebhookDelivery(
        trigger_id=f"trg_{secrets.token_hex(16)}",
        model_id=webhook.model_id,
        round_id=None if round_ is None else round_.id,
        reason=reason,
        url=webhook.url,
        attempts=0,
        next_attempt_at=now,
        created_at=now,
    )


def queue_deliveries(session: Session, round_: Round, now: datetime) -> list[WebhookDelivery]:
    """A delivery for each model of `round_`'s tournament with a webhook (and allowed one)
    that has none for the round yet; returns those added."""
    webhooks = session.scalars(
        select(ModelWebhook)
        .join(Model, Model.id == ModelWebhook.model_id)
        .where(Model.tournament_id == round_.tournament_id)
        .order_by(ModelWebhook.created_at, ModelWebhook.id)
    ).all()
    sent = set(
        session.scalars(
            select(WebhookDelivery.model_id).where(
                WebhookDelivery.round_id == round_.id, WebhookDelivery.reason == ROUND_OPENED
            )
        )
    )
    added = []
    for webhook in webhooks:
        if webhook.model_id in sent:
            continue
        try:
            check_webhook_allowed(session, webhook.model)
        except WebhookRefused:
            continue
        delivery = _delivery(webhook, round_, ROUND_OPENED, now)
        session.add(delivery)
        added.append(delivery)
    session.flush()
    return added


def trigger_by_hand(
    session: Session, clock: Clock, account: Account, model_id: uuid.UUID | str
) -> WebhookDelivery:
    """A delivery to the webhook of `account`'s model `model_id` now, for its tournament's
    open round (or none); the webhook worker sends it."""
    model = get_own_model(session, account, model_id)
    webhook = webhook_of(session, model)
    if webhook is None:
        raise WebhookRefused(f"model {model.name!r} has no webhook: set one first")
    check_webhook_allowed(session, model)
    latest = current_round(session, model.tournament)
    open_round = latest if latest is not None and latest.status is RoundStatus.OPEN else None
    delivery = _delivery(webhook, open_round, BY_HAND, clock.now())
    session.add(delivery)
    session.flush()
    return delivery


def delivery_for_trigger(
    session: Session, model: Model, round_: Round, trigger_id: str | None
) -> uuid.UUID | None:
    """The delivery an upload for `model` to `round_` names with `trigger_id` (None if it
    names none); `UnknownTrigger` if it is not one of the model's, or was for another round."""
    if not trigger_id:
        return None
    delivery = session.scalar(
        select(WebhookDelivery).where(WebhookDelivery.trigger_id == str(trigger_id)[:64])
    )
    if delivery is None or delivery.model_id != model.id:
        raise UnknownTrigger(
            f"trigger id {str(trigger_id)[:64]!r} was not sent to model {model.name!r}:"
            " send the trigger id its webhook received, or none"
        )
    if delivery.round_ is not None and delivery.round_id != round_.id:
        raise UnknownTrigger(
            f"trigger id {delivery.trigger_id!r} was sent for round {delivery.round_.number},"
            f" not round {round_.number}"
        )
    return delivery.id


def link_trigger(session: Session, delivery_id: uuid.UUID, submission: Submission) -> None:
    """Record that `submission` was made from the delivery `delivery_id`."""
    delivery = session.get_one(WebhookDelivery, delivery_id)
    delivery.submission_id = submission.id
    session.flush()


def trigger_ids(session: Session, submissions: Iterable[Submission]) -> dict[uuid.UUID, str]:
    """The trigger id each of `submissions` was made from, where one was."""
    ids = [submission.id for submission in submissions]
    if not ids:
        return {}
    rows = session.execute(
        select(WebhookDelivery.submission_id, WebhookDelivery.trigger_id).where(
            WebhookDelivery.submission_id.in_(ids)
        )
    ).all()
    return {submission_id: trigger for submission_id, trigger in rows if submission_id}


def latest_deliveries(
    session: Session, model: Model, limit: int = LATEST_DELIVERIES
) -> list[WebhookDelivery]:
    """`model`'s newest deliveries, newest first."""
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.model_id == model.id)
            .order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id)
            .limit(limit)
        )
    )
