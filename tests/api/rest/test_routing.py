"""One transaction per request: an unexpected failure answers JSON 500 and changes nothing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select

from crowdquant.api.rest import account
from crowdquant.db.models import ApiKey, Model

from .helpers import RestWorld, refused


def _last_used(world: RestWorld) -> object:
    public_id = world.tokens["reader"].split("$")[0]
    with world.sessions() as session:
        return session.scalar(select(ApiKey.last_used_at).where(ApiKey.public_id == public_id))


def test_an_unexpected_failure_is_a_json_500_and_rolled_back(
    world: RestWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_args: object) -> list[ApiKey]:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(account, "list_api_keys", broken)
    before = _last_used(world)
    with world.client("reader") as api:
        detail = refused(api.get("/account/api-keys"), 500, "internal_error")
        assert "fire" not in detail["message"]
        assert _last_used(world) == before  # authentication's write was rolled back
        api.get("/account")
    assert _last_used(world) != before  # a request that succeeds is committed


def test_the_session_is_committed_before_the_answer(world: RestWorld) -> None:
    with world.client("alice") as api:
        created = api.post("/models", json={"tournament": 11, "name": "committed"}).json()
    with world.sessions() as session:  # as soon as the answer is here, others see the model
        assert session.get(Model, uuid.UUID(created["id"])) is not None


@pytest.mark.parametrize(
    "body", [b"\xc3\x28", b'{"tournament": 8, "name": "caf\xe9"}', b"[" * 100_000]
)
def test_a_body_that_cannot_be_decoded_is_bad_input(
    world: RestWorld, body: bytes, raised_recursion_limit: None
) -> None:
    before = world.count(Model)
    with world.client("alice") as api:
        answer = api.post("/models", content=body, headers={"Content-Type": "application/json"})
    assert "not UTF-8 JSON" in refused(answer, 422, "invalid_request")["message"]
    assert world.count(Model) == before
