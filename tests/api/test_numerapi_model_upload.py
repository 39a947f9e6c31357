"""Model uploads through the real numerapi 3.1.1 client: `model_upload` of a cloudpickled
LightGBM `predict`, then a round opening, gives a valid submission with no participant
action, scored when the round resolves; its runs show in the model's `computePickleUpload`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import cloudpickle
import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from graphql import build_schema
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.api.graphql import SCHEMA_FILE
from crowdquant.clock import ManualClock
from crowdquant.compute.runtime import default_runtime
from crowdquant.compute.sandbox import SandboxLimits
from crowdquant.db.models import (
    ApiScope,
    Cadence,
    ComputeJob,
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
from crowdquant.tournament.compute_jobs import ComputeWorker
from crowdquant.tournament.model_uploads import LOG_SHOWN
from crowdquant.tournament.models import create_model
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import RoundOpened, Scheduler
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.tournaments import create_tournament

from ..tournament.live_market import MONDAY, feed_publisher, local_storage
from .server import serve
from .test_numerapi import CHEAP

QUICK = SandboxLimits(memory_bytes=2 << 30, cpu_seconds=120, wall_seconds=120, processes=32)
STATUS = """query { account { models { id computePickleUpload { filename validationStatus
  triggerStatus triggers { id status runtime runtimeLockHash log
  statuses { status description insertedAt } } } } } }"""


@dataclass
class World:
    clock: ManualClock
    storage: LocalStorage
    sessions: sessionmaker[Session]
    keys: tuple[str, str]
    model_id: str
    files: Path


@pytest.fixture
def world(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(MONDAY)
    storage = local_storage(tmp_path / "files")
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        account = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
        model = create_model(session, clock, account, 8, "alice_model")
        key = create_api_key(session, clock, account, "laptop", list(ApiScope))
        keys, model_id = (key.public_id, key.secret), str(model.id)
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(settings, clock=clock, sessions=sessions, storage=storage)
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield World(clock, storage, sessions, keys, model_id, tmp_path / "files")
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def lightgbm_predict(tmp_path: Path) -> Path:
    """A small LightGBM model trained on random features, pickled as numerai asks."""
    import lightgbm

    rng = np.random.default_rng(1)
    features = [f"feature_{i}" for i in range(8)]
    train = pd.DataFrame(rng.integers(0, 5, (400, 8)), columns=features)
    booster = lightgbm.LGBMRegressor(n_estimators=10, num_leaves=7, verbose=-1, n_jobs=1)
    booster.fit(train, rng.normal(size=400))

    def predict(live_features: pd.DataFrame, live_benchmark_models: pd.DataFrame) -> pd.DataFrame:
        columns = [c for c in live_features.columns if str(c).startswith("feature")]
        values = booster.predict(live_features[columns[:8]].to_numpy())
        ranked = pd.Series(values, index=live_features.index).rank(pct=True, method="first")
        return ranked.to_frame("prediction")

    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(predict))
    return path


def scheduler_of(world: World) -> Scheduler:
    publisher = feed_publisher(world.files)
    runtime = TournamentRuntime(publisher, FeedTargets(publisher.feed))
    return Scheduler(world.sessions, world.clock, {8: runtime}, storage=world.storage)


def open_round(world: World, scheduler: Scheduler) -> None:
    for _ in range(48):
        if any(isinstance(event, RoundOpened) for event in scheduler.tick()):
            return
        world.clock.advance(timedelta(hours=1))
    raise AssertionError("no round opened")


def test_a_model_uploaded_with_numerapi_submits_when_a_round_opens(
    world: World, tmp_path: Path
) -> None:
    napi = numerapi.NumerAPI(*world.keys)
    runtimes = napi.model_upload_docker_images()
    assert list(runtimes) == ["default", "py311"]
    assert list(napi.model_upload_data_versions()) == ["v1"]

    upload_id = napi.model_upload(
        str(lightgbm_predict(tmp_path)),
        model_id=world.model_id,
        data_version="v1",
        docker_image="default",
    )
    with world.sessions() as session:
        upload = session.get_one(ModelUpload, uuid.UUID(upload_id))
        assert (upload.runtime, upload.data_version, upload.enabled) == ("default", "v1", True)
    assert world.storage.list("uploads") == []  # the PUT's file became the upload

    scheduler = scheduler_of(world)
    open_round(world, scheduler)
    ComputeWorker(
        world.sessions, world.clock, world.storage, limits=QUICK, work_dir=tmp_path
    ).run_until_idle()

    with world.sessions() as session:
        [submission] = session.scalars(select(Submission)).all()
        assert str(submission.model_id) == world.model_id
        assert submission.status is SubmissionStatus.VALID, submission.error
    [model] = napi.raw_query(STATUS, authorization=True)["data"]["account"]["models"]
    shown = model["computePickleUpload"]
    assert shown["filename"] == "model.pkl"
    assert shown["validationStatus"] == shown["triggerStatus"] == "success"
    [trigger] = shown["triggers"]
    assert trigger["runtime"] == "default"
    with transaction(world.sessions) as session:  # a long log: its end is shown
        session.scalars(select(ComputeJob)).one().log = "a" + "b" * LOG_SHOWN
    [model] = napi.raw_query(STATUS, authorization=True)["data"]["account"]["models"]
    assert model["computePickleUpload"]["triggers"][0]["log"] == "b" * LOG_SHOWN
    assert trigger["runtimeLockHash"] == default_runtime().lock_hash
    assert [s["status"] for s in trigger["statuses"]] == [
        "pending",
        "running",
        "validating",
        "success",
    ]
    with world.sessions() as session:  # scored at the round's resolve time like any other
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
        assert {score.metric for score in scores} >= {"corr"}
        assert any(score.value is not None for score in scores)
    # the rounds opened since queue the model's next runs, with no participant action
    [model] = napi.raw_query(STATUS, authorization=True)["data"]["account"]["models"]
    later = model["computePickleUpload"]["triggers"]
    assert len(later) > 1 and later[0]["status"] == "pending"


def test_an_unknown_runtime_is_refused_by_name(world: World, tmp_path: Path) -> None:
    napi = numerapi.NumerAPI(*world.keys)
    with pytest.raises(ValueError, match="docker_image"):
        napi.model_upload(
            str(tmp_path / "model.pkl"), model_id=world.model_id, docker_image="Python 2.7"
        )
    with world.sessions() as session:
        assert session.scalars(select(ModelUpload)).all() == []


def test_the_schema_says_how_much_of_a_log_is_shown() -> None:
    schema = build_schema(SCHEMA_FILE.read_text())
    field = schema.get_type("ComputePickleTrigger").fields["log"]  # type: ignore[union-attr]
    assert f"last {LOG_SHOWN} characters" in (field.description or "")
