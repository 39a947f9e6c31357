"""Rate limits on uploads and diagnostics per account: REST answers 429 with Retry-After,
GraphQL (numerapi's protocol) HTTP 200 with the refusal as its error message."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from crowdquant.db.models import Submission

from .helpers import RestWorld, predictions_csv, refused


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CROWDQUANT_RATE_LIMIT_UPLOAD", "2/hour")
    monkeypatch.setenv("CROWDQUANT_RATE_LIMIT_DIAGNOSTICS", "1/hour")


def test_rest_uploads_past_the_limit_are_429_and_record_nothing(
    limits: None, world: RestWorld
) -> None:
    content = predictions_csv(world.live_ids)
    with world.client("alice") as api:
        path = f"/models/{world.alice_model}/submissions"
        for _ in range(2):
            assert api.post(path, files={"file": ("p.csv", content)}).status_code == 201
        answer = api.post(path, files={"file": ("p.csv", content)})
    detail = refused(answer, 429, "too_many_requests")
    assert "too many upload requests" in detail["message"]
    assert 0 < int(answer.headers["Retry-After"]) <= 3600
    assert world.count(Submission) == 2
    with world.client("bob") as other:  # the address's count holds back its other accounts
        again = other.post(
            f"/models/{world.bob_model}/submissions", files={"file": ("p.csv", content)}
        )
    refused(again, 429, "too_many_requests")


def test_rest_diagnostics_past_the_limit_are_429(limits: None, world: RestWorld) -> None:
    with world.client("alice") as api:
        path = f"/models/{world.alice_model}/diagnostics"
        first = api.post(path, files={"file": ("v.csv", b"id,prediction\n")})
        assert first.status_code != 429, first.text
        answer = api.post(path, files={"file": ("v.csv", b"id,prediction\n")})
    refused(answer, 429, "too_many_requests")
    assert "Retry-After" in answer.headers


CREATE = """mutation($filename: String, $tournament: Int, $modelId: String) {
  create_submission(filename: $filename, tournament: $tournament, modelId: $modelId) { id }
}"""


def _graphql(world: RestWorld, query: str, variables: dict[str, Any]) -> httpx.Response:
    return httpx.post(
        world.url + "/",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Token {world.tokens['alice']}"},
        timeout=30,
    )


def test_graphql_uploads_past_the_limit_answer_an_error_message(
    limits: None, world: RestWorld
) -> None:
    variables = {"filename": "nothing.csv", "tournament": 8, "modelId": world.alice_model}
    messages = []
    for _ in range(3):
        answer = _graphql(world, CREATE, variables)
        assert answer.status_code == 200
        messages.append(answer.json()["errors"][0]["message"])
    assert "too many" not in messages[0] and "too many" not in messages[1]
    assert messages[2].startswith("too many upload requests: try again in")
