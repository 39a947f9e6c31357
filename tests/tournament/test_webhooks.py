"""Submission webhooks: where they may point, and deliveries signed, retried with backoff
and claimed one attempt at a time (against a real HTTP receiver on loopback)."""

from __future__ import annotations

import ipaddress
import json
import re
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import (
    Cadence,
    Model,
    ModelUpload,
    ModelWebhook,
    Round,
    RoundStatus,
    Rules,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from crowdquant.db.session import transaction
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.models import NotYourModel, create_model
from crowdquant.tournament.tournaments import create_tournament
from crowdquant.tournament.webhook_worker import (
    SIGNATURE_HEADER,
    WebhookPolicy,
    WebhookWorker,
    claim_delivery,
    signature_matches,
)
from crowdquant.tournament.webhooks import (
    ROUND_OPENED,
    WebhookRefused,
    WebhookTargets,
    queue_deliveries,
    set_webhook,
    trigger_by_hand,
)

from .webhook_receiver import webhook_receiver

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
START = datetime(2026, 3, 2, 12, tzinfo=UTC)
DEFAULT = WebhookTargets.default()
LOOPBACK = replace(DEFAULT, allowed=(ipaddress.ip_network("127.0.0.1/32"),))
QUICK = WebhookPolicy(timeout_seconds=5, max_attempts=3, backoff_seconds=60)


def resolving(answers: dict[str, list[str]]) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        if host not in answers:
            raise OSError(f"unknown host {host}")
        return answers[host]

    return resolve


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("http://127.0.0.1:8000/hook", "127.0.0.0/8"),
        ("http://10.1.2.3/hook", "10.0.0.0/8"),
        ("http://169.254.169.254/latest/meta-data", "169.254.0.0/16"),
        ("http://192.168.0.10/", "192.168.0.0/16"),
        ("http://172.20.0.1/", "172.16.0.0/12"),
        ("http://224.0.0.1/", "224.0.0.0/4"),
        ("http://[::1]/hook", "::1/128"),
        ("http://[fe80::1]/hook", "fe80::/10"),
        ("http://[::ffff:10.0.0.1]/hook", "10.0.0.0/8"),
        ("http://0.0.0.0/", "0.0.0.0/8"),
    ],
)
def test_the_default_targets_refuse_loopback_private_and_link_local_hosts(
    url: str, named: str
) -> None:
    with pytest.raises(WebhookRefused, match=f"may not be called: .*{re.escape(named)}"):
        DEFAULT.check(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://hooks.example/x", "must start with http:// or https://"),
        ("file:///etc/passwd", "must start with http:// or https://"),
        ("hooks.example/x", "must start with http:// or https://"),
        ("https://user:pw@hooks.example/", "may not carry a user name or password"),
        ("https:///path", "has no host"),
        ("https://hooks.example:99999/", "not a valid URL"),
        ("https://nowhere.invalid/", "'nowhere.invalid' could not be resolved"),
        ("https://hooks.example/" + "a" * 2048, "longer than 2048 characters"),
    ],
)
def test_a_malformed_webhook_url_is_refused_saying_what_is_wrong(url: str, message: str) -> None:
    targets = replace(DEFAULT, resolve=resolving({"hooks.example": ["93.184.216.34"]}))
    with pytest.raises(WebhookRefused, match=message):
        targets.check(url)


def test_a_public_host_is_allowed_and_the_operator_may_allow_a_denied_network() -> None:
    targets = replace(DEFAULT, resolve=resolving({"hooks.example": ["93.184.216.34"]}))
    checked = targets.check("https://hooks.example/run")
    assert (checked.host, checked.port) == ("hooks.example", 443)
    assert checked.addresses == (ipaddress.ip_address("93.184.216.34"),)
    # one denied address among several refuses the host
    mixed = replace(DEFAULT, resolve=resolving({"hooks.example": ["93.184.216.34", "10.0.0.1"]}))
    with pytest.raises(WebhookRefused, match=r"10\.0\.0\.1 is in the denied network"):
        mixed.check("https://hooks.example/run")
    assert LOOPBACK.check("http://127.0.0.1:9/x").port == 9
    own = replace(targets, own=frozenset({ipaddress.ip_address("93.184.216.34")}))
    with pytest.raises(WebhookRefused, match="this server's own address"):
        own.check("https://hooks.example/run")
    with pytest.raises(WebhookRefused, match=r"127\.0\.0\.2"):
        LOOPBACK.check("http://127.0.0.2:9/x")


def _model(sessions: sessionmaker[Session], clock: ManualClock, name: str = "alice") -> uuid.UUID:
    with transaction(sessions) as session:
        if name == "alice":
            create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
        return create_model(session, clock, account, 8, f"{name}_model").id


def _register(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    model_id: uuid.UUID,
    url: str | None,
    targets: WebhookTargets = LOOPBACK,
) -> str | None:
    with transaction(sessions) as session:
        account = session.get_one(Model, model_id).account
        webhook = set_webhook(session, clock, targets, account, model_id, url)
        return None if webhook is None else webhook.secret


def _trigger(sessions: sessionmaker[Session], clock: ManualClock, model_id: uuid.UUID) -> str:
    with transaction(sessions) as session:
        account = session.get_one(Model, model_id).account
        return trigger_by_hand(session, clock, account, model_id).trigger_id


def _delivery(sessions: sessionmaker[Session], trigger_id: str) -> WebhookDelivery:
    with sessions() as session:
        return session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.trigger_id == trigger_id)
        ).one()


def test_a_delivery_is_signed_retried_with_backoff_and_then_delivered(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    with webhook_receiver(answers=[500]) as receiver:
        secret = _register(sessions, clock, model_id, receiver.url)
        assert secret is not None and secret.startswith("whsec_")
        trigger_id = _trigger(sessions, clock, model_id)
        worker = WebhookWorker(sessions, clock, LOOPBACK, policy=QUICK)

        assert len(worker.run_until_idle()) == 1
        first = _delivery(sessions, trigger_id)
        assert (first.status, first.attempts, first.response_code) == (
            WebhookDeliveryStatus.PENDING,
            1,
            500,
        )
        assert first.error == "answered HTTP 500"
        assert first.next_attempt_at == START + timedelta(seconds=60)
        assert worker.run_until_idle() == []  # the retry is not due yet
        clock.advance(timedelta(seconds=60))
        assert len(worker.run_until_idle()) == 1

    delivered = _delivery(sessions, trigger_id)
    assert (delivered.status, delivered.attempts, delivered.response_code) == (
        WebhookDeliveryStatus.DELIVERED,
        2,
        200,
    )
    assert delivered.finished_at == START + timedelta(seconds=60)
    assert [r.headers["x-crowdquant-attempt"] for r in receiver.received] == ["1", "2"]
    for request in receiver.received:
        assert request.path == "/hook"
        assert request.headers["content-type"] == "application/json"
        header = request.headers[SIGNATURE_HEADER.lower()]
        assert signature_matches(secret, header, request.body)
        assert not signature_matches(secret + "x", header, request.body)
        assert not signature_matches(secret, header, request.body + b" ")
        assert json.loads(request.body) == {
            "triggerId": trigger_id,
            "tournament": 8,
            "roundNumber": None,
            "modelId": str(model_id),
            "modelName": "alice_model",
        }


def test_a_delivery_that_keeps_failing_ends_failed_after_its_last_attempt(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    with webhook_receiver(answers=[503, 404, 500, 200]) as receiver:
        _register(sessions, clock, model_id, receiver.url)
        trigger_id = _trigger(sessions, clock, model_id)
        worker = WebhookWorker(sessions, clock, LOOPBACK, policy=QUICK)
        for wait in (0, 60, 120, 240):
            clock.advance(timedelta(seconds=wait))
            worker.run_until_idle()
    failed = _delivery(sessions, trigger_id)
    assert (failed.status, failed.attempts, failed.response_code) == (
        WebhookDeliveryStatus.FAILED,
        3,
        500,
    )
    assert len(receiver.received) == 3


def test_each_attempt_is_claimed_by_one_worker_and_a_dead_workers_is_taken_over(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    _register(sessions, clock, model_id, "http://127.0.0.1:9/hook")
    trigger_id = _trigger(sessions, clock, model_id)
    lease = timedelta(seconds=40)

    first = claim_delivery(sessions, "one", START, lease)
    assert first is not None and first[1] == 1
    assert claim_delivery(sessions, "two", START + timedelta(seconds=39), lease) is None
    # "one" died while sending: once its lease ran out, "two" makes the next attempt
    second = claim_delivery(sessions, "two", START + timedelta(seconds=41), lease)
    assert second == (first[0], 2)
    held = _delivery(sessions, trigger_id)
    assert (held.lease_holder, held.attempts) == ("two", 2)


def test_the_address_checked_is_the_address_called_and_a_host_that_moved_is_not(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    with webhook_receiver() as receiver:
        port = receiver.url.split(":")[2].split("/")[0]
        url = f"http://hooks.example:{port}/hook"
        pinned = replace(LOOPBACK, resolve=resolving({"hooks.example": ["127.0.0.1"]}))
        _register(sessions, clock, model_id, url, pinned)
        sent = _trigger(sessions, clock, model_id)
        WebhookWorker(sessions, clock, pinned, policy=QUICK).run_until_idle()
        assert _delivery(sessions, sent).status is WebhookDeliveryStatus.DELIVERED
        assert [r.headers["host"] for r in receiver.received] == [f"hooks.example:{port}"]

        # the name now resolves into a denied network: the attempt is refused, nothing sent
        moved = replace(pinned, resolve=resolving({"hooks.example": ["10.0.0.7"]}))
        refused = _trigger(sessions, clock, model_id)
        WebhookWorker(sessions, clock, moved, policy=QUICK).run_until_idle()
    delivery = _delivery(sessions, refused)
    assert (delivery.status, delivery.attempts) == (WebhookDeliveryStatus.PENDING, 1)
    assert delivery.error is not None and "10.0.0.7 is in the denied network" in delivery.error
    assert len(receiver.received) == 1


def test_a_webhook_is_set_changed_and_removed_by_its_owner_only(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    secret = _register(sessions, clock, model_id, "http://127.0.0.1:9/a")
    assert _register(sessions, clock, model_id, "http://127.0.0.1:9/b") == secret
    with pytest.raises(WebhookRefused, match=r"10\.0\.0\.0/8"):
        _register(sessions, clock, model_id, "http://10.0.0.1/")
    with sessions() as session:
        [stored] = session.scalars(select(ModelWebhook)).all()
        assert stored.url == "http://127.0.0.1:9/b"  # the refused URL changed nothing
    bob_model = _model(sessions, clock, "bob")
    with transaction(sessions) as session:
        bob = session.get_one(Model, bob_model).account
        with pytest.raises(NotYourModel):
            set_webhook(session, clock, LOOPBACK, bob, model_id, None)
    assert _register(sessions, clock, model_id, None) is None
    with sessions() as session:
        assert session.scalars(select(ModelWebhook)).all() == []
    with transaction(sessions) as session, pytest.raises(WebhookRefused, match="no webhook"):
        trigger_by_hand(session, clock, session.get_one(Model, model_id).account, model_id)


def test_a_round_opening_queues_one_delivery_per_webhook_sent_only_while_it_is_open(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    _model(sessions, clock, "bob")  # no webhook: no delivery
    _register(sessions, clock, model_id, "http://127.0.0.1:9/hook")
    with transaction(sessions) as session:
        model = session.get_one(Model, model_id)
        round_ = Round(
            tournament_id=model.tournament_id,
            number=1,
            status=RoundStatus.OPEN,
            open_time=START,
            close_staking_time=START + timedelta(days=1),
            close_time=START + timedelta(days=2),
            live_era="0001",
            dataset_version="v1",
        )
        session.add(round_)
        session.flush()
        [queued] = queue_deliveries(session, round_, START)
        assert (queued.model_id, queued.reason) == (model_id, ROUND_OPENED)
        assert queue_deliveries(session, round_, START) == []  # once per round
        round_.status = RoundStatus.CLOSED  # closed before any worker came by
    WebhookWorker(sessions, clock, LOOPBACK, policy=QUICK).run_until_idle()
    late = _delivery(sessions, queued.trigger_id)
    assert (late.status, late.error) == (
        WebhookDeliveryStatus.FAILED,
        "round 1 closed before it was delivered",
    )


def test_a_host_looked_up_first_is_checked_later_with_no_second_lookup() -> None:
    asked: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append(host)
        if host == "gone.example":
            raise OSError("no such host")
        return {"hooks.example": ["93.184.216.34"], "inside.example": ["10.0.0.3"]}[host]

    targets = replace(DEFAULT, resolve=resolve)
    for url, outcome in [
        ("https://hooks.example/x", None),
        ("https://inside.example/x", r"10\.0\.0\.3 is in the denied network"),
        ("https://gone.example/x", "'gone.example' could not be resolved"),
        ("ftp://hooks.example/x", "must start with http"),
    ]:
        first = targets.resolved_first(url)
        looked_up = len(asked)
        if outcome is None:
            assert first.check(url).addresses == (ipaddress.ip_address("93.184.216.34"),)
        else:
            with pytest.raises(WebhookRefused, match=outcome):
                first.check(url)
        assert len(asked) == looked_up  # nothing looked up again
    assert asked == ["hooks.example", "inside.example", "gone.example"]


def test_a_model_that_runs_an_upload_takes_no_webhook(sessions: sessionmaker[Session]) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    _register(sessions, clock, model_id, "http://127.0.0.1:9/hook")
    with transaction(sessions) as session:
        session.add(
            ModelUpload(
                model_id=model_id,
                filename="model.pkl",
                file_key="compute/model.pkl",
                size=1,
                sha256="0" * 64,
                runtime="default",
                enabled=True,
                created_at=START,
            )
        )
    with pytest.raises(WebhookRefused, match=r"runs its uploaded model 'model\.pkl'"):
        _register(sessions, clock, model_id, "http://127.0.0.1:9/other")
    with pytest.raises(WebhookRefused, match="disable that upload"):
        _trigger(sessions, clock, model_id)


def test_a_closed_live_tournament_takes_no_webhook(sessions: sessionmaker[Session]) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    _register(sessions, clock, model_id, "http://127.0.0.1:9/hook")
    with transaction(sessions) as session:
        session.get_one(Model, model_id).tournament.settings = {"live": "closed"}
    with pytest.raises(WebhookRefused, match="closed-live"):
        _register(sessions, clock, model_id, "http://127.0.0.1:9/other")
    with pytest.raises(WebhookRefused, match="closed-live"):
        _trigger(sessions, clock, model_id)
    with sessions() as session:
        assert session.scalars(select(WebhookDelivery)).all() == []


def test_a_receiver_that_does_not_answer_in_time_is_tried_again(
    sessions: sessionmaker[Session],
) -> None:
    clock = ManualClock(START)
    model_id = _model(sessions, clock)
    with webhook_receiver() as receiver:
        _register(sessions, clock, model_id, receiver.url)
        trigger_id = _trigger(sessions, clock, model_id)
        receiver.answering.clear()
        impatient = replace(QUICK, timeout_seconds=0.2)
        WebhookWorker(sessions, clock, LOOPBACK, policy=impatient).run_until_idle()
        receiver.answering.set()
    waited = _delivery(sessions, trigger_id)
    assert (waited.status, waited.attempts, waited.response_code) == (
        WebhookDeliveryStatus.PENDING,
        1,
        None,
    )
    assert waited.error is not None and waited.error.startswith("ReadTimeout")
