"""Targets of live and holdout eras, hidden scores and others' files, tried through every read
path (GraphQL, REST, signed file URLs): each is refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from crowdquant.db.models import ApiScope, MetaModel, Model, RoundTargets, Submission
from crowdquant.db.session import transaction
from crowdquant.http.signing import signer_from_settings
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, get_account
from crowdquant.tournament.scoring import FeedTargets

from ..tournament.scored_round import DAY, World, add_hidden_score, market_feed, score
from .server import serve

API = "/api/v1"


@pytest.fixture
def served(world: World, tmp_path: Path) -> Iterator[tuple[World, str, Settings, str]]:
    world.clock.advance(5 * DAY)
    score(world, FeedTargets(market_feed()))
    with transaction(world.sessions) as session:
        alice = get_account(session, "alice")
        key = create_api_key(session, world.clock, alice, "k", [ApiScope.READ, ApiScope.UPLOAD])
        token = f"Token {key.public_id}${key.secret}"
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(settings, clock=world.clock, sessions=world.sessions, storage=world.storage)
    with serve(app) as url:
        yield world, url, settings, token


def _graphql(url: str, query: str, token: str | None = None) -> dict[str, object]:
    headers = {"Authorization": token} if token else {}
    answer = httpx.post(url + "/", json={"query": query}, headers=headers)
    assert answer.status_code == 200
    body: dict[str, object] = answer.json()
    return body


def test_operator_files_are_never_served_even_when_signed(
    served: tuple[World, str, Settings, str],
) -> None:
    world, url, settings, _ = served
    with transaction(world.sessions) as session:
        keys = list(session.scalars(select(RoundTargets.storage_key)))
        keys += list(session.scalars(select(MetaModel.storage_key)))
    assert keys and all(key.startswith("operator/") for key in keys)
    signer = signer_from_settings(settings, world.clock)
    for key in keys:
        path = f"/files/{key}"
        query = signer.sign("GET", path, timedelta(hours=1))
        answer = httpx.get(f"{url}{path}?{query}")
        assert answer.status_code == 403 and "not served" in answer.text
        head = httpx.head(f"{url}{path}?{query}")
        assert head.status_code == 403


def test_no_listing_or_dataset_query_reaches_targets_or_the_holdout(
    served: tuple[World, str, Settings, str],
) -> None:
    _, url, _, _ = served
    listed = _graphql(url, "{ listDatasets(tournament: 8) }")
    names = listed["data"]["listDatasets"]  # type: ignore[index]
    assert names and not any("target" in n or "holdout" in n or "operator" in n for n in names)
    for filename in ("v1/holdout.parquet", "operator/rounds/x/targets_day_001.parquet"):
        answer = _graphql(url, f'{{ dataset(filename: "{filename}", tournament: 8) }}')
        assert answer.get("errors") and not (answer.get("data") or {}).get("dataset")
    rest = httpx.get(f"{url}{API}/tournaments/8/datasets/holdout.parquet")
    assert rest.status_code == 404
    for version in httpx.get(f"{url}{API}/datasets").json():
        assert not any("holdout" in str(f) or "target" in str(f) for f in version["files"])


def test_another_participants_submission_file_is_refused(
    served: tuple[World, str, Settings, str],
) -> None:
    world, url, _, token = served
    with transaction(world.sessions) as session:
        bobs = session.scalars(select(Submission.id).join(Model).where(Model.name == "bob")).first()
    answer = httpx.get(f"{url}{API}/submissions/{bobs}/download", headers={"Authorization": token})
    assert answer.status_code == 403
    listed = httpx.get(
        f"{url}{API}/models/{world.models['bob']}/submissions", headers={"Authorization": token}
    )
    assert listed.status_code == 403


def test_hidden_scores_never_reach_a_participant(served: tuple[World, str, Settings, str]) -> None:
    world, url, _, _ = served
    with transaction(world.sessions) as session:
        model_id = add_hidden_score(session, day=1).model_id
    scores = _graphql(
        url, f'{{ submissionScores(modelId: "{model_id}", tournament: 8) {{ displayName }} }}'
    )
    shown = {s["displayName"] for s in scores["data"]["submissionScores"]}  # type: ignore[index]
    assert "corr" in shown and "test_logloss" not in shown
    performances = _graphql(
        url,
        f'{{ v2RoundModelPerformances(modelId: "{model_id}", tournament: 8)'
        " { intraRoundSubmissionScores { displayName } } }",
    )
    rounds = performances["data"]["v2RoundModelPerformances"]  # type: ignore[index]
    shown = {s["displayName"] for r in rounds for s in r["intraRoundSubmissionScores"]}
    assert "corr" in shown and "test_logloss" not in shown
