"""Submission webhooks through the real numerapi 3.1.1 client: `set_submission_webhook`, a
round opening that calls the webhook (signed, retried after a failure), and an upload made
from the trigger id it received, linked to its delivery."""

from __future__ import annotations

import ipaddress
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import (
    ApiScope,
    Cadence,
    ModelWebhook,
    Round,
    Rules,
    WebhookDelivery,
    WebhookDeliveryStatus,
)
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.models import create_model
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament
from crowdquant.tournament.webhook_worker import (
    SIGNATURE_HEADER,
    WebhookPolicy,
    WebhookWorker,
    signature_matches,
)
from crowdquant.tournament.webhooks import WebhookTargets

from ..tournament.live_market import MONDAY, local_storage
from ..tournament.webhook_receiver import webhook_receiver
from .server import serve
from .test_numerapi import CHEAP
from .test_numerapi_model_upload import World, open_round, scheduler_of

LOOPBACK = [ipaddress.ip_network("127.0.0.1/32")]
SUBMISSIONS = "query($modelId: String!) { submissions(modelId: $modelId) { id triggerId } }"


@dataclass
class Webhooks:
    world: World
    other_model_id: str


@pytest.fixture
def webhooks(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Webhooks]:
    clock = ManualClock(MONDAY)
    storage = local_storage(tmp_path / "files")
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        account = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
        model = create_model(session, clock, account, 8, "alice_model")
        other = create_model(session, clock, account, 8, "alice_second")
        key = create_api_key(session, clock, account, "laptop", list(ApiScope))
        keys, model_id, other_id = (key.public_id, key.secret), str(model.id), str(other.id)
    settings = Settings(mode="local", home=tmp_path / "home", webhook_allowed_networks=LOOPBACK)
    app = create_app(settings, clock=clock, sessions=sessions, storage=storage)
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            world = World(clock, storage, sessions, keys, model_id, tmp_path / "files")
            yield Webhooks(world, other_id)
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def _predictions(ids: pd.Index) -> pd.DataFrame:
    values = np.random.default_rng(0).uniform(0.05, 0.95, len(ids))
    return pd.DataFrame({"id": ids.astype(str), "prediction": values})


def test_a_round_opening_calls_the_webhook_and_the_upload_it_triggers_is_linked(
    webhooks: Webhooks, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world = webhooks.world
    napi = numerapi.NumerAPI(*world.keys)
    targets = WebhookTargets(denied=(), allowed=tuple(LOOPBACK))
    worker = WebhookWorker(
        world.sessions,
        world.clock,
        targets,
        policy=WebhookPolicy(timeout_seconds=5, max_attempts=3, backoff_seconds=30),
    )
    with webhook_receiver(answers=[500]) as receiver:
        assert napi.set_submission_webhook(world.model_id, receiver.url) is True
        assert napi.set_submission_webhook(webhooks.other_model_id, receiver.url) is True
        with world.sessions() as session:
            secret = session.scalars(
                select(ModelWebhook.secret).where(
                    ModelWebhook.model_id == uuid.UUID(world.model_id)
                )
            ).one()

        open_round(world, scheduler_of(world))
        worker.run_until_idle()  # one model's first attempt fails (500), the other's lands
        world.clock.advance(timedelta(seconds=30))
        worker.run_until_idle()  # the retry

    assert len(receiver.received) == 3
    mine = [r for r in receiver.received if json.loads(r.body)["modelId"] == world.model_id]
    bodies = {r.body for r in mine}
    assert len(bodies) == 1  # a retry sends the same trigger
    body = json.loads(next(iter(bodies)))
    assert (body["roundNumber"], body["tournament"], body["modelName"]) == (1, 8, "alice_model")
    for request in mine:
        assert signature_matches(secret, request.headers[SIGNATURE_HEADER.lower()], request.body)
    with world.sessions() as session:
        deliveries = session.scalars(select(WebhookDelivery)).all()
        assert {d.status for d in deliveries} == {WebhookDeliveryStatus.DELIVERED}
        assert sorted(d.attempts for d in deliveries) == [1, 2]
        round_ = session.scalars(select(Round)).one()
        live_ids = live_ids_of_round(world.storage, round_)
        other_trigger = next(
            d.trigger_id for d in deliveries if str(d.model_id) == webhooks.other_model_id
        )

    predictions = tmp_path / "predictions.csv"
    _predictions(live_ids).to_csv(predictions, index=False)
    # a trigger id sent to another model, and one never sent, are refused
    monkeypatch.setenv("TRIGGER_ID", other_trigger)
    with pytest.raises(ValueError, match="was not sent to model 'alice_model'"):
        napi.upload_predictions(str(predictions), model_id=world.model_id)
    monkeypatch.setenv("TRIGGER_ID", "trg_made_up")
    with pytest.raises(ValueError, match="'trg_made_up' was not sent to model"):
        napi.upload_predictions(str(predictions), model_id=world.model_id)
    # the one it received links the upload to its delivery
    monkeypatch.setenv("TRIGGER_ID", body["triggerId"])
    submission_id = napi.upload_predictions(str(predictions), model_id=world.model_id)
    with world.sessions() as session:
        linked = session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.trigger_id == body["triggerId"])
        ).one()
        assert str(linked.submission_id) == submission_id
    listed = napi.raw_query(SUBMISSIONS, {"modelId": world.model_id}, authorization=True)
    assert listed["data"]["submissions"] == [{"id": submission_id, "triggerId": body["triggerId"]}]


def test_webhooks_into_the_servers_networks_are_refused_and_one_is_triggered_by_hand(
    webhooks: Webhooks,
) -> None:
    world = webhooks.world
    napi = numerapi.NumerAPI(*world.keys)
    for url, named in [
        ("http://10.0.0.1/hook", r"10\.0\.0\.1 is in the denied network 10\.0\.0\.0/8"),
        ("http://169.254.169.254/", r"denied network 169\.254\.0\.0/16"),
        ("http://127.0.0.2:8080/", r"denied network 127\.0\.0\.0/8"),
        ("gopher://example.org/", "must start with http:// or https://"),
    ]:
        with pytest.raises(ValueError, match=named):
            napi.set_submission_webhook(world.model_id, url)
    with world.sessions() as session:
        assert session.scalars(select(ModelWebhook)).all() == []

    trigger = "mutation($modelId: String!) { triggerModelWebhook(modelId: $modelId) }"
    with pytest.raises(ValueError, match="has no webhook: set one first"):
        napi.raw_query(trigger, {"modelId": world.model_id}, authorization=True)
    assert napi.set_submission_webhook(world.model_id, "http://127.0.0.1:9/hook") is True
    sent = napi.raw_query(trigger, {"modelId": world.model_id}, authorization=True)
    trigger_id = sent["data"]["triggerModelWebhook"]
    with world.sessions() as session:
        delivery = session.scalars(select(WebhookDelivery)).one()
        assert (delivery.trigger_id, delivery.reason, delivery.round_id) == (
            trigger_id,
            "by hand",
            None,
        )
    assert napi.set_submission_webhook(world.model_id, None) is True
    with world.sessions() as session:
        assert session.scalars(select(ModelWebhook)).all() == []
