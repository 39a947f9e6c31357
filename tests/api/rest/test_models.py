"""GET /models, POST /models, GET /models/{id}."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select

from crowdquant.db.models import ApiKey, Model

from .helpers import RestWorld, refused


def _last_used(world: RestWorld, token: str) -> datetime | None:
    public_id = world.tokens[token].split("$")[0]
    with world.sessions() as session:
        return session.scalar(select(ApiKey.last_used_at).where(ApiKey.public_id == public_id))


def test_list_and_get_own_models(world: RestWorld) -> None:
    with world.client("reader") as api:
        listed = api.get("/models").json()
        assert listed == [api.get(f"/models/{world.alice_model}").json()]
        assert api.get("/models", params={"tournament": 8}).json() == listed
        assert api.get("/models", params={"tournament": 11}).json() == []
        refused(api.get("/models", params={"tournament": 99}), 404, "tournament_not_found")
    model = listed[0]
    assert model["id"] == world.alice_model
    assert model["name"] == "alice_model"
    assert model["tournament"] == 8
    assert model["created_at"].endswith("Z")


def test_create_a_model(world: RestWorld) -> None:
    with world.client("alice") as api:
        answer = api.post("/models", json={"tournament": 11, "name": "Alice_Weekly"})
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert created["name"] == "alice_weekly"
        assert created["tournament"] == 11
        assert api.get(f"/models/{created['id']}").json() == created
        assert [model["name"] for model in api.get("/models").json()] == [
            "alice_model",
            "alice_weekly",
        ]


def test_refused_creations_change_nothing(world: RestWorld) -> None:
    before = world.count(Model)
    with world.client("alice") as api:
        refused(
            api.post("/models", json={"tournament": 8, "name": "bob_model"}),
            409,
            "model_name_taken",
        )
        refused(api.post("/models", json={"tournament": 8, "name": "x"}), 422, "invalid_model_name")
        refused(
            api.post("/models", json={"tournament": 99, "name": "new_one"}),
            404,
            "tournament_not_found",
        )
        for body in (
            {"name": "new_one"},
            {"tournament": "eight", "name": "new_one"},
            {"tournament": 0, "name": "new_one"},
            {"tournament": 2**40, "name": "new_one"},
            {"tournament": 8, "name": "new_one", "owner": "bob"},
            {"tournament": 8, "name": "n" * 65},
            [],
        ):
            refused(api.post("/models", json=body), 422, "invalid_request")
        not_json = api.post(
            "/models", content=b"{nope", headers={"Content-Type": "application/json"}
        )
        refused(not_json, 422, "invalid_request")
    with world.client("reader") as api:
        refused(
            api.post("/models", json={"tournament": 8, "name": "new_one"}), 403, "missing_scope"
        )
    with world.client(None) as api:
        refused(
            api.post("/models", json={"tournament": 8, "name": "new_one"}), 401, "malformed_token"
        )
    assert world.count(Model) == before


def test_another_accounts_model_is_refused(world: RestWorld) -> None:
    with world.client("alice") as api:
        api.get("/account")
        used = _last_used(world, "alice")
        detail = refused(api.get(f"/models/{world.bob_model}"), 403, "not_your_model")
        assert "another account" in detail["message"]
        assert world.bob_model not in {model["id"] for model in api.get("/models").json()}
    # the refused request was rolled back: not even the key's last use was recorded
    with world.client("bob") as api:
        assert api.get(f"/models/{world.bob_model}").json()["name"] == "bob_model"
    assert _last_used(world, "alice") == used


def test_unknown_and_malformed_model_ids(world: RestWorld) -> None:
    with world.client("alice") as api:
        refused(api.get(f"/models/{uuid.uuid4()}"), 404, "unknown_model")
        refused(api.get("/models/not-a-uuid"), 422, "invalid_request")
