"""The real numerapi 3.1.1 client against the app served by uvicorn, on both backends.

The round is opened at the real time of day (numerapi's `check_round_open` compares with
the wall clock), replaying the synthetic market of `tests/tournament/live_market.py` a whole
number of weeks behind the calendar.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

import httpx
import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.api.files import WHOLE_BYTES
from crowdquant.clock import ManualClock
from crowdquant.db.models import ApiScope, Cadence, Rules, Submission, SubmissionStatus
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage, NotFound
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.calendar import RoundTimes
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round, shift_weeks
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..tournament.live_market import TUESDAY_NOON, local_storage, market_feed, stored_bytes
from .server import serve

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@dataclass
class World:
    base_url: str
    clock: ManualClock
    storage: LocalStorage
    sessions: sessionmaker[Session]
    public_id: str
    secret: str
    model_id: str
    live_ids: pd.Index


def _open_round_now(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage
) -> pd.Index:
    now = clock.now()
    era_date = now.date() - timedelta(days=1)
    weeks = (era_date - TUESDAY_NOON.date()).days // 7
    publisher = FeedPublisher(market_feed(), storage, market_date=shift_weeks(weeks))
    times = RoundTimes(
        open_time=now - timedelta(hours=1),
        close_staking_time=now + timedelta(days=1),
        close_time=now + timedelta(days=2),
        era_date=era_date,
        resolve_time=now + timedelta(days=30),
    )
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        round_ = open_round(session, clock, tournament, publisher, times=times)
        return live_ids_of_round(storage, round_)


@pytest.fixture
def world(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    storage = local_storage(tmp_path / "files")
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        account = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
        model = create_model(session, clock, account, 8, "alice_model")
        key = create_api_key(session, clock, account, "laptop", [ApiScope.READ, ApiScope.UPLOAD])
        model_id = str(model.id)
    live_ids = _open_round_now(sessions, clock, storage)
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(settings, clock=clock, sessions=sessions, storage=storage)
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield World(
                url, clock, storage, sessions, key.public_id, key.secret, model_id, live_ids
            )
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def _predictions(ids: pd.Index) -> pd.DataFrame:
    values = np.random.default_rng(0).uniform(0.05, 0.95, len(ids))
    return pd.DataFrame({"id": ids.astype(str), "prediction": values})


def test_numerapi_round_datasets_models_and_uploads(world: World, tmp_path: Path) -> None:
    napi = numerapi.NumerAPI(world.public_id, world.secret)

    assert napi.get_current_round() == 1
    assert napi.check_round_open() is True
    assert "v1/live.parquet" in napi.list_datasets()

    # download: bytes equal the stored file
    dest = tmp_path / "download" / "live.parquet"
    napi.download_dataset("v1/live.parquet", str(dest))
    expected = stored_bytes(world.storage, "v1/live_1.parquet")  # the current round's file
    assert dest.read_bytes() == expected

    # resumed download: numerapi finds a partial .temp file and asks for the rest by Range
    resumed = tmp_path / "resumed" / "live.parquet"
    resumed.parent.mkdir()
    Path(f"{resumed}.temp").write_bytes(expected[:1000])
    napi.download_dataset("v1/live.parquet", str(resumed))
    assert resumed.read_bytes() == expected

    assert napi.get_models() == {"alice_model": world.model_id}

    # a valid upload
    good = tmp_path / "predictions.csv"
    _predictions(world.live_ids).to_csv(good, index=False)
    submission_id = napi.upload_predictions(str(good), model_id=world.model_id)
    with world.sessions() as session:
        stored = session.get(Submission, uuid.UUID(submission_id))
        assert stored is not None
        assert stored.status is SubmissionStatus.VALID
        assert stored.n_rows == len(world.live_ids)

    # an upload missing ids: numerapi raises our message, the service records it invalid
    bad = tmp_path / "bad.csv"
    _predictions(world.live_ids[: len(world.live_ids) // 2]).to_csv(bad, index=False)
    with pytest.raises(ValueError, match="recorded as submission") as refused:
        napi.upload_predictions(str(bad), model_id=world.model_id)
    assert "id" in str(refused.value)
    with world.sessions() as session:
        statuses = session.scalars(select(Submission.status)).all()
    assert sorted(statuses) == sorted([SubmissionStatus.VALID, SubmissionStatus.INVALID])
    listed = napi.submission_ids(world.model_id)
    assert submission_id in {entry["id"] for entry in listed}
    assert len(listed) == 2


def test_errors_are_graphql_errors(world: World) -> None:
    with pytest.raises(ValueError, match="unknown API key or wrong secret"):
        numerapi.NumerAPI(world.public_id, "WRONG").get_models()
    napi = numerapi.NumerAPI()
    with pytest.raises(ValueError, match=r"no published dataset file v1/nope\.parquet"):
        napi.download_dataset("v1/nope.parquet", "/nonexistent/never-written")
    answer = httpx.post(world.base_url, content=b"{not json")
    assert answer.status_code == 200
    assert answer.json() == {"errors": [{"message": "the request body is not JSON"}]}
    answer = httpx.post(world.base_url, json={"query": "{ signalsLeaderboard { rank } }"})
    assert answer.json()["errors"][0]["message"] == (
        "signalsLeaderboard is not available on this server yet"
    )


def _dataset_url(world: World) -> str:
    answer = httpx.post(
        world.base_url,
        json={"query": '{ dataset(filename: "v1/live.parquet", tournament: 8) }'},
    )
    url: str = answer.json()["data"]["dataset"]
    return url


def test_ranges_head_and_signed_links(world: World) -> None:
    url = _dataset_url(world)
    content = stored_bytes(world.storage, "v1/live_1.parquet")  # live.parquet: round 1's
    size = len(content)

    head = httpx.head(url)
    assert head.status_code == 200
    assert head.headers["content-length"] == str(size)
    assert head.headers["accept-ranges"] == "bytes"

    part = httpx.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206
    assert part.content == content[10:100]
    assert part.headers["content-length"] == "90"
    assert part.headers["content-range"] == f"bytes 10-99/{size}"
    tail = httpx.get(url, headers={"Range": "bytes=-7"})
    assert (tail.status_code, tail.content) == (206, content[-7:])
    for bad in (f"bytes={size}-", "bytes=5-2", "bytes=0-1,4-5", "pages=1-2"):
        refused = httpx.get(url, headers={"Range": bad})
        assert refused.status_code == 416, bad
        assert refused.headers["content-range"] == f"bytes */{size}"

    forged = url.replace("signature=", "signature=A")
    assert httpx.get(forged).status_code == 403
    put_with_get_link = httpx.put(url, content=b"x")
    assert put_with_get_link.status_code == 403
    assert put_with_get_link.json() == {"detail": "this link is not valid"}

    world.clock.advance(timedelta(days=1))
    expired = httpx.get(url)
    assert expired.status_code == 403
    assert expired.json()["detail"].startswith("this link expired at")


def test_a_file_past_one_piece_is_streamed_whole_and_its_ranges_served(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = _dataset_url(world)
    big = np.random.default_rng(1).bytes(2 * WHOLE_BYTES + 12_345)  # streamed, in chunks
    world.storage.write("v1/live_1.parquet", big)
    whole = httpx.get(url)
    assert (whole.status_code, whole.headers["content-length"]) == (200, str(len(big)))
    assert whole.content == big
    across = httpx.get(url, headers={"Range": f"bytes=100-{WHOLE_BYTES + 99}"})  # one piece
    assert (across.status_code, across.content) == (206, big[100 : WHOLE_BYTES + 100])
    longer = httpx.get(url, headers={"Range": f"bytes=100-{WHOLE_BYTES + 100}"})  # streamed
    assert (longer.status_code, longer.content) == (206, big[100 : WHOLE_BYTES + 101])

    def gone(key: str, *args: object) -> NoReturn:
        raise NotFound(key)

    with monkeypatch.context() as patched:  # gone between its size and its read
        patched.setattr(world.storage, "read", gone)
        vanished = httpx.get(url)
    assert (vanished.status_code, vanished.json()) == (404, {"detail": "the file is gone"})
    world.storage.delete("v1/live_1.parquet")
    assert httpx.get(url).status_code == 404


def test_upload_size_limit(world: World) -> None:
    query = """query($filename: String!, $tournament: Int!, $modelId: String) {
        submission_upload_auth(filename: $filename, tournament: $tournament, modelId: $modelId)
        { filename url } }"""
    answer = httpx.post(
        world.base_url,
        json={"query": query, "variables": {"filename": "p.csv", "tournament": 8, "modelId": None}},
        headers={"Authorization": f"Token {world.public_id}${world.secret}"},
    )
    auth = answer.json()["data"]["submission_upload_auth"]
    assert auth["filename"].startswith(f"uploads/{world.model_id.replace('-', '')}/")
    limit = int(httpx.URL(auth["url"]).params["max_bytes"])
    assert httpx.put(auth["url"], content=b"x" * (limit + 1)).status_code == 413
    assert not world.storage.exists(auth["filename"])
    assert httpx.put(auth["url"], content=b"id,prediction\n").status_code == 200
    assert world.storage.exists(auth["filename"])
