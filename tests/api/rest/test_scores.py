"""The REST scores and diagnostics routes over a scored round."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import ApiScope, Round
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, get_account
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.scoring import FeedTargets

from ...tournament.scored_round import DAY, World, market_feed, score, scored_world, stored_scores
from ..server import serve
from .helpers import API, refused


@pytest.fixture
def scored(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[tuple[World, str, str]]:
    world = scored_world(sessions, tmp_path)
    world.clock.advance(40 * DAY)
    score(world, FeedTargets(market_feed()))
    with transaction(world.sessions) as session:
        RoundLifecycle(None, world.clock).resolve(session, session.get_one(Round, world.round_id))
        bob = get_account(session, "bob")
        key = create_api_key(session, world.clock, bob, "k", [ApiScope.READ, ApiScope.UPLOAD])
        token = f"Token {key.public_id}${key.secret}"
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(settings, clock=world.clock, sessions=world.sessions, storage=world.storage)
    with serve(app) as url:
        yield world, url + API, token


def _finals(world: World) -> pd.Series:
    stored = stored_scores(world)
    final = stored[(stored["day"] == 20) & (stored["metric"] == "corr")]
    return final.set_index("model")["value"]


def test_leaderboards_round_table_and_model_history(scored: tuple[World, str, str]) -> None:
    world, api, _ = scored
    corr = _finals(world)
    board = httpx.get(f"{api}/tournaments/8/leaderboard").json()
    assert [row["rank"] for row in board] == [1, 2, 3, 4, 5]
    assert board[0]["reputation"]["corr"] == pytest.approx(corr.drop("latecomer").max())
    assert board[0]["stake"] == "0" and board[-1]["name"] == "latecomer"
    assert [
        row["name"] for row in httpx.get(f"{api}/tournaments/8/leaderboard?limit=2&offset=1").json()
    ] == [row["name"] for row in board[1:3]]
    accounts = httpx.get(f"{api}/tournaments/8/leaderboard/accounts").json()
    assert {row["name"] for row in accounts} == {"alice", "bob"}

    table = httpx.get(f"{api}/tournaments/8/rounds/1/scores").json()
    assert table["round"]["status"] == "resolved"
    by_model = {row["model"]: row for row in table["models"]}
    assert by_model["bob"]["scores"]["corr"] == pytest.approx(corr["bob"])
    assert by_model["latecomer"]["late"] and by_model["latecomer"]["rank"] is None

    history = httpx.get(f"{api}/tournaments/8/models/bob/scores?metric=corr").json()
    assert [row["day"] for row in history] == list(range(1, 21))
    assert history[-1]["value"] == pytest.approx(corr["bob"])
    by_id = httpx.get(f"{api}/tournaments/8/models/{world.models['bob']}/scores?metric=corr")
    assert by_id.json() == history

    refused(httpx.get(f"{api}/tournaments/8/models/nobody/scores"), 404, "unknown_model")
    refused(httpx.get(f"{api}/tournaments/9/leaderboard"), 404, "tournament_not_found")
    refused(
        httpx.get(f"{api}/tournaments/8/models/bob/scores?metric=DROP%20TABLE"),
        422,
        "invalid_request",
    )


def test_diagnostics_without_validation_data_are_refused_and_change_nothing(
    scored: tuple[World, str, str],
) -> None:
    world, api, token = scored
    headers = {"Authorization": token}
    files = {"file": ("val.csv", io.BytesIO(b"id,prediction\nn1,0.5\n"))}
    answer = httpx.post(
        f"{api}/models/{world.models['bob']}/diagnostics", files=files, headers=headers
    )
    refused(answer, 503, "no_validation_data")
    listed = httpx.get(f"{api}/models/{world.models['bob']}/diagnostics", headers=headers)
    assert listed.status_code == 200 and listed.json() == []
    assert not list(world.storage.root.glob("uploads/**/*.csv"))
    others = httpx.get(f"{api}/models/{world.models['alice_a']}/diagnostics", headers=headers)
    refused(others, 403, "not_your_model")
