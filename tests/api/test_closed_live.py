"""A closed-live tournament: a round runs end to end with uploaded models only, no route, file
URL or listing serves its live features, and numerapi's downloads and uploads of live
predictions get the reason."""

from __future__ import annotations

import hashlib
import html
import io
import json
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numerapi
import numerapi.base_api
import pandas as pd
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from starlette.routing import Mount

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import (
    ApiScope,
    Cadence,
    ComputeJob,
    DatasetFile,
    ModelUpload,
    Round,
    RoundScore,
    Rules,
    Submission,
    SubmissionStatus,
)
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.compute_jobs import SEALED_LOG, ComputeWorker
from crowdquant.tournament.datasets import publish_dataset_version, set_dataset_alias
from crowdquant.tournament.models import create_model
from crowdquant.tournament.tournaments import create_tournament, get_tournament, update_settings
from crowdquant.tournament.visibility import is_live_file

from ..tournament.live_market import MONDAY, build_dataset_version, local_storage, stored_bytes
from ..web.site import PASSWORD, Browser
from .server import serve
from .test_numerapi import CHEAP
from .test_numerapi_model_upload import QUICK, lightgbm_predict, open_round, scheduler_of

REFUSAL = "runs closed-live"
SIGNED_FILE = re.compile(r"/files/([^?\"'\s<>]+)\?[^\"'\s<>]+")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("closed-live"))


@dataclass
class World:
    app: FastAPI
    url: str
    clock: ManualClock
    storage: LocalStorage
    sessions: sessionmaker[Session]
    keys: dict[str, tuple[str, str]]
    model_ids: dict[str, str]
    files: Path


def world_of(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion, live: str
) -> Iterator[World]:
    """Tournament 8 on the published version v1 (also served as `v1-alias`), `live` open or
    closed; alice and bob with a model each and a key with every scope; served."""
    clock = ManualClock(MONDAY)
    storage = local_storage(tmp_path / "files")
    keys, model_ids = {}, {}
    with transaction(sessions) as session:
        publish_dataset_version(session, clock, storage, built)
        set_dataset_alias(session, clock, "v1-alias", "v1")
        create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1", {"live": live}
        )
        for name in ("alice", "bob"):
            account = sign_up(session, clock, name, f"{name}@example.org", PASSWORD, hasher=CHEAP)
            model = create_model(session, clock, account, 8, f"{name}_model")
            key = create_api_key(session, clock, account, "laptop", list(ApiScope))
            keys[name], model_ids[name] = (key.public_id, key.secret), str(model.id)
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(settings, clock=clock, sessions=sessions, storage=storage, hasher=CHEAP)
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield World(app, url, clock, storage, sessions, keys, model_ids, tmp_path / "files")
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


@pytest.fixture
def closed(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> Iterator[World]:
    yield from world_of(sessions, tmp_path, built, "closed")


@pytest.fixture
def opened(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> Iterator[World]:
    yield from world_of(sessions, tmp_path, built, "open")


def predictions_csv(world: World, path: Path) -> Path:
    """Predictions for every live id of the newest round (read from storage, as an outsider
    cannot)."""
    with world.sessions() as session:
        key = session.scalars(
            select(DatasetFile.storage_key).where(DatasetFile.filename == "live.parquet")
        ).one()
    live = pd.read_parquet(io.BytesIO(stored_bytes(world.storage, key)), columns=[])
    ranks = (pd.RangeIndex(len(live)) + 1) / (len(live) + 1)
    frame = pd.DataFrame({"id": live.index.astype(str), "prediction": ranks})
    frame.to_csv(path, index=False)
    return path


def test_a_closed_live_round_runs_end_to_end_with_uploaded_models_only(
    closed: World, tmp_path: Path
) -> None:
    world = closed
    alice, bob = (numerapi.NumerAPI(*world.keys[name]) for name in ("alice", "bob"))
    upload_id = alice.model_upload(
        str(lightgbm_predict(tmp_path)), model_id=world.model_ids["alice"], data_version="v1"
    )
    scheduler = scheduler_of(world)
    open_round(world, scheduler)

    # the participants can neither download the live features nor send live predictions
    with pytest.raises(ValueError, match=REFUSAL):
        bob.download_dataset("v1/live.parquet", str(tmp_path / "live.parquet"))
    assert not (tmp_path / "live.parquet").exists()
    predictions = predictions_csv(world, tmp_path / "predictions.csv")
    with pytest.raises(ValueError, match=REFUSAL):
        bob.upload_predictions(str(predictions), model_id=world.model_ids["bob"])
    with pytest.raises(ValueError, match=REFUSAL):
        alice.upload_predictions(str(predictions), model_id=world.model_ids["alice"])
    with httpx.Client(base_url=world.url) as client:
        answer = client.post(
            f"/api/v1/models/{world.model_ids['bob']}/submissions",
            headers={"Authorization": "Token {}${}".format(*world.keys["bob"])},
            files={"file": ("predictions.csv", predictions.read_bytes(), "text/csv")},
        )
    assert answer.status_code == 403, answer.text
    assert answer.json()["detail"]["code"] == "submitted_by_runs_only"
    assert REFUSAL in answer.json()["detail"]["message"]

    # the uploaded model runs in the sandbox, and only its validated predictions come out
    ComputeWorker(
        world.sessions, world.clock, world.storage, limits=QUICK, work_dir=tmp_path
    ).run_until_idle()
    with world.sessions() as session:
        [submission] = session.scalars(select(Submission)).all()
        assert str(submission.model_id) == world.model_ids["alice"]
        assert submission.status is SubmissionStatus.VALID, submission.error
        [job] = session.scalars(select(ComputeJob)).all()
        assert job.upload_id == uuid.UUID(upload_id)
        assert job.log == SEALED_LOG
        round_ = session.scalars(select(Round).where(Round.number == 1)).one()
        world.clock.set(round_.close_time)
        scheduler.tick()
        assert round_.resolve_time is not None
        world.clock.set(round_.resolve_time)
        scheduler.tick()
    with world.sessions() as session:
        scores = session.scalars(
            select(RoundScore).where(RoundScore.submission_id == submission.id)
        ).all()
        assert any(score.metric == "corr" and score.value is not None for score in scores)


def test_a_model_with_an_upload_takes_no_api_submissions(opened: World, tmp_path: Path) -> None:
    world = opened
    alice, bob = (numerapi.NumerAPI(*world.keys[name]) for name in ("alice", "bob"))
    upload_id = alice.model_upload(
        str(lightgbm_predict(tmp_path)), model_id=world.model_ids["alice"]
    )
    open_round(world, scheduler_of(world))
    predictions = predictions_csv(world, tmp_path / "predictions.csv")
    with pytest.raises(ValueError, match=f"uploaded model 'model.pkl' \\(upload {upload_id}\\)"):
        alice.upload_predictions(str(predictions), model_id=world.model_ids["alice"])
    with httpx.Client(base_url=world.url) as client:
        answer = client.post(
            f"/api/v1/models/{world.model_ids['alice']}/submissions",
            headers={"Authorization": "Token {}${}".format(*world.keys["alice"])},
            files={"file": ("predictions.csv", predictions.read_bytes(), "text/csv")},
        )
    assert answer.status_code == 403, answer.text
    assert upload_id in answer.json()["detail"]["message"]
    with world.sessions() as session:
        assert session.scalars(select(Submission)).all() == []
    # a model without an upload, in an open tournament, still submits and downloads
    assert bob.upload_predictions(str(predictions), model_id=world.model_ids["bob"])
    bob.download_dataset("v1/live.parquet", str(tmp_path / "live.parquet"))
    assert (tmp_path / "live.parquet").stat().st_size > 0
    # once the upload is disabled, its owner submits again
    with transaction(world.sessions) as session:
        session.get_one(ModelUpload, uuid.UUID(upload_id)).enabled = False
    assert alice.upload_predictions(str(predictions), model_id=world.model_ids["alice"])


# --- every route -------------------------------------------------------------------------------


def get_paths(app: FastAPI) -> list[str]:
    """Every path the app answers GET on, with its parameters, through included routers."""

    def walk(routes: list[Any], prefix: str) -> Iterator[tuple[str, set[str]]]:
        for route in routes:
            inner = getattr(route, "original_router", None)
            if inner is not None:
                yield from walk(inner.routes, prefix + route.include_context.prefix)
            elif isinstance(route, Mount):
                yield f"{prefix}{route.path}/{{path}}", {"GET"}
            else:
                yield prefix + route.path, set(getattr(route, "methods", None) or ())

    return [path for path, methods in walk(app.routes, "") if "GET" in methods]


PARAMETER = re.compile(r"\{(\w+)(?::\w+)?\}")


def filled(path: str, values: dict[str, list[str]]) -> list[str]:
    """`path` with each parameter replaced by each of its values."""
    found = PARAMETER.search(path)
    if found is None:
        return [path]
    name = found[1]
    if name == "number" and "{tournament}" in path:  # /rounds/{tournament}/{number}
        name = "round"
    head, tail = path[: found.start()], path[found.end() :]
    return [url for value in values.get(name, ["x"]) for url in filled(head + value + tail, values)]


GRAPHQL_DATASET = "query($f: String!, $r: Int) { dataset(filename: $f, round: $r, tournament: 8) }"


def served_live_files(world: World) -> tuple[set[str], list[httpx.Response]]:
    """The live keys that any GET route, GraphQL dataset field or listing's file URL serves
    to a signed-in participant with an API key, and every answer."""
    with world.sessions() as session:
        rows = session.scalars(select(DatasetFile)).all()
        live_rows = [row for row in rows if is_live_file(row.filename)]
        live_bytes = {stored_bytes(world.storage, row.storage_key) for row in live_rows}
        live_names = sorted({row.filename for row in live_rows})
        live_keys = {row.storage_key for row in live_rows}
    values = {
        "number": ["8"],
        "tournament": ["8"],
        "round": ["1"],
        "round_number": ["1"],
        "filename": live_names,
        "path": live_names + [f"v1/{name}" for name in live_names],
        "key": sorted(live_keys),
        "model_id": [world.model_ids["alice"]],
        "model_name": ["alice_model"],
        "model": ["alice_model"],
    }
    client = httpx.Client(
        base_url=world.url,
        headers={"Authorization": "Token {}${}".format(*world.keys["alice"])},
        follow_redirects=True,
    )
    answers = []
    with client:
        browser = Browser(client)
        browser.submit("/login", {"username": "alice", "password": PASSWORD})
        for path in get_paths(world.app):
            answers += [client.get(url) for url in filled(path, values)]
        graphql = [{"query": "{ listDatasets }", "variables": {}}]
        for version in ("v1", "v1-alias"):
            for name in live_names:
                for round_number in (None, 1):
                    variables = {"f": f"{version}/{name}", "r": round_number}
                    graphql.append({"query": GRAPHQL_DATASET, "variables": variables})
        graphql += [{"query": GRAPHQL_DATASET, "variables": {"f": n}} for n in live_names]
        answers += [client.post("/", json=body) for body in graphql]
        served = set()
        for answer in list(answers):
            assert answer.content not in live_bytes, answer.url
            for found in SIGNED_FILE.finditer(html.unescape(answer.text)):
                followed = client.get(found[0])
                answers.append(followed)
                if followed.status_code == 200 and followed.content in live_bytes:
                    served.add(found[1])
    return served, answers


def test_no_route_file_url_or_listing_serves_a_closed_tournaments_live_features(
    opened: World,
) -> None:
    world = opened
    open_round(world, scheduler_of(world))
    while_open, _ = served_live_files(world)
    assert {"v1/live_1.parquet", "v1/live_example_preds.parquet"} <= while_open  # found at all
    with httpx.Client(base_url=world.url) as client:
        links = client.get("/api/v1/tournaments/8/rounds/1/datasets/live.parquet").json()

    with transaction(world.sessions) as session:
        update_settings(session, get_tournament(session, 8), {"live": "closed"})
    served, answers = served_live_files(world)
    assert served == set()
    assert any(REFUSAL in answer.text for answer in answers)  # downloads say why
    with httpx.Client(base_url=world.url) as client:
        old_link = client.get(links["url"])  # signed while the tournament was open
        page = client.get("/rounds/8/1")
        rest = client.get("/api/v1/tournaments/8/rounds/1/datasets/live.parquet")
    assert old_link.status_code == 403 and "closed-live" in old_link.text
    assert rest.status_code == 403 and rest.json()["detail"]["code"] == "live_closed"
    assert REFUSAL in rest.json()["detail"]["message"]
    assert "closed live" in page.text.lower()


def features_json(world: World) -> tuple[dict[str, Any], bytes]:
    """The REST download answer for features.json, and the file its URL serves."""
    with httpx.Client(base_url=world.url) as client:
        answer = client.get("/api/v1/tournaments/8/datasets/features.json").json()
        return answer, client.get(answer["url"]).content


def test_features_json_says_when_a_tournament_runs_closed_live(opened: World) -> None:
    world = opened
    answer, served = features_json(world)
    assert "live" not in json.loads(served)  # an open tournament's file, as published
    assert hashlib.sha256(served).hexdigest() == answer["sha256"]

    with transaction(world.sessions) as session:
        update_settings(session, get_tournament(session, 8), {"live": "closed"})
    answer, served = features_json(world)
    published = json.loads(stored_bytes(world.storage, "v1/features.json"))
    assert json.loads(served) == {**published, "live": "closed"}
    assert (answer["size"], answer["sha256"]) == (len(served), hashlib.sha256(served).hexdigest())
    with httpx.Client(base_url=world.url) as client:
        listed = client.get("/api/v1/tournaments/8/datasets").json()["files"]
        part = client.get(answer["url"], headers={"Range": "bytes=2-9"})
    [entry] = [row for row in listed if row["filename"] == "features.json"]
    assert entry["sha256"] == answer["sha256"]
    assert part.status_code == 206 and part.content == served[2:10]
