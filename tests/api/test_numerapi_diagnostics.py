"""Diagnostics through the real numerapi 3.1.1 client against the app served by uvicorn.

No round is needed: diagnostics score predictions on the published validation eras of the
tournament's dataset version, which the fixture publishes before the app starts.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import ApiScope, Cadence, DiagnosticsStatus, Rules
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.datasets import publish_dataset_version
from crowdquant.tournament.diagnostics import StoredValidationLoader, run_next_diagnostics
from crowdquant.tournament.models import create_model
from crowdquant.tournament.tournaments import create_tournament

from ..tournament.live_market import build_dataset_version, local_storage
from ..tournament.test_diagnostics import FEATURE_SET, expected_per_era, predictions
from .server import serve
from .test_numerapi import CHEAP


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("diagnostics"))


@dataclass
class World:
    base_url: str
    clock: ManualClock
    storage: LocalStorage
    sessions: sessionmaker[Session]
    built: DatasetVersion
    alice: tuple[str, str]
    bob: tuple[str, str]
    alice_model: str
    alice_other_model: str
    bob_model: str


@pytest.fixture
def world(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> Iterator[World]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    storage = local_storage(tmp_path / "files")
    keys = []
    with transaction(sessions) as session:
        publish_dataset_version(session, clock, storage, built)
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        models = []
        for name in ("alice", "bob"):
            account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            models.append(str(create_model(session, clock, account, 8, f"{name}_model").id))
            key = create_api_key(session, clock, account, "laptop", list(ApiScope))
            keys.append((key.public_id, key.secret))
            if name == "alice":
                models.append(str(create_model(session, clock, account, 8, "alice_two").id))
    settings = Settings(mode="local", home=tmp_path / "home")
    app = create_app(settings, clock=clock, sessions=sessions, storage=storage)
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield World(url, clock, storage, sessions, built, keys[0], keys[1], *models)
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def run_worker_step(world: World) -> None:
    loader = StoredValidationLoader(world.storage, feature_set=FEATURE_SET)
    row = run_next_diagnostics(world.sessions, world.storage, world.clock, loader)
    assert row is not None


def test_upload_poll_and_read_the_scores(world: World, tmp_path: Path) -> None:
    napi = numerapi.NumerAPI(*world.alice)
    frame = predictions(world.built)

    diagnostics_id = napi.upload_diagnostics(df=frame, model_id=world.alice_model)
    pending = napi.diagnostics(world.alice_model, diagnostics_id)
    assert pending["status"] == "pending"
    assert pending["message"] == "waiting to be scored (request 1 for this model)"
    assert pending["updatedAt"] == world.clock.now()  # parsed by numerapi
    assert pending["perEraDiagnostics"] == []
    assert pending["validationCorrMean"] is None

    world.clock.advance(timedelta(minutes=2))
    run_worker_step(world)
    done = napi.diagnostics(world.alice_model, diagnostics_id)
    assert done["status"] == "done"
    assert done["updatedAt"] == world.clock.now()
    assert "request 1 for this model" in done["message"]

    expected = expected_per_era(world.built, frame)
    assert done["erasAcceptedCount"] == len(expected)
    per_era = pd.DataFrame(done["perEraDiagnostics"]).set_index("era")
    assert list(per_era.index) == list(expected.index)
    fields = {
        "validationCorr": "corr",
        "validationMmc": "mmc",
        "validationBmc": "mmc",
        "validationFeatureNeutralCorr": "fnc",
        "validationFeatureCorrMax": "feature_exposure",
        "examplePredsCorr": "corr_with_example_preds",
    }
    for ours, theirs in fields.items():
        np.testing.assert_allclose(per_era[ours], expected[theirs], atol=1e-9, err_msg=ours)
    assert per_era["validationChurn"].isna().all() and per_era["validationRic"].isna().all()

    corr, mmc = expected["corr"].to_numpy(), expected["mmc"].to_numpy()
    cumulative = np.cumsum(corr)
    top_level = {
        "validationCorrMean": corr.mean(),
        "validationCorrStd": corr.std(),
        "validationCorrSharpe": corr.mean() / corr.std(),
        "validationMaxDrawdown": (np.maximum.accumulate(cumulative) - cumulative).max(),
        "validationMmcMean": mmc.mean(),
        "validationMmcSharpe": mmc.mean() / mmc.std(),
        "validationBmcMean": mmc.mean(),
        "validationCorrPlusMmcMean": (corr + mmc).mean(),
        "validationFeatureNeutralCorrMean": expected["fnc"].mean(),
        "validationFeatureCorrMax": expected["feature_exposure"].mean(),
        "examplePredsCorrMean": expected["corr_with_example_preds"].mean(),
        "validationCorrCorrWExamplePreds": np.corrcoef(corr, expected["example_corr"])[0, 1],
    }
    for field, value in top_level.items():
        assert done[field] == pytest.approx(value, abs=1e-9), field
    for unset in ("trainedOnVal", "validationCorrMeanRating", "validationApy", "validationRicMean"):
        assert done[unset] is None

    # a second look counts up; without an id, the newest is shown
    csv = tmp_path / "again.csv"
    frame.to_csv(csv, index=False)
    again = napi.upload_diagnostics(str(csv), model_id=world.alice_model)
    latest = napi.diagnostics(world.alice_model)
    assert latest["status"] == "pending"
    assert latest["message"] == "waiting to be scored (request 2 for this model)"
    answer = httpx.post(
        world.base_url,
        json={
            "query": "query($m: String) {"
            " diagnostics(modelId: $m) { id requestNumber datasetVersion } }",
            "variables": {"m": world.alice_model},
        },
        headers={"Authorization": f"Token {world.alice[0]}${world.alice[1]}"},
    )
    assert answer.json()["data"]["diagnostics"] == {
        "id": again,
        "requestNumber": 2,
        "datasetVersion": "v1",
    }


def test_a_bad_file_shows_its_error(world: World) -> None:
    napi = numerapi.NumerAPI(*world.alice)
    frame = predictions(world.built).iloc[:100]
    diagnostics_id = napi.upload_diagnostics(df=frame, model_id=world.alice_model)
    run_worker_step(world)
    failed = napi.diagnostics(world.alice_model, diagnostics_id)
    assert failed["status"] == DiagnosticsStatus.FAILED.value
    assert failed["message"].startswith("invalid_submission_ids: ")
    assert "live ids are missing" in failed["message"]
    assert failed["perEraDiagnostics"] == [] and failed["erasAcceptedCount"] is None


def test_only_ones_own_models(world: World) -> None:
    alice, bob = numerapi.NumerAPI(*world.alice), numerapi.NumerAPI(*world.bob)
    frame = predictions(world.built)
    diagnostics_id = alice.upload_diagnostics(df=frame, model_id=world.alice_model)

    with pytest.raises(ValueError, match="that model belongs to another account"):
        bob.diagnostics(world.alice_model, diagnostics_id)
    with pytest.raises(ValueError, match="that model belongs to another account"):
        bob.upload_diagnostics(df=frame, model_id=world.alice_model)
    with pytest.raises(ValueError, match="no diagnostics has that id for this model"):
        bob.diagnostics(world.bob_model, diagnostics_id)
    with pytest.raises(ValueError, match="model 'bob_model' has no diagnostics yet"):
        bob.diagnostics(world.bob_model)
    # numerapi's default model_id is "": the account's only model, else a readable refusal
    assert bob.diagnostics(world.bob_model, bob.upload_diagnostics(df=frame))["status"] == "pending"
    with pytest.raises(ValueError, match="you have several models in tournament 8: pass model_id"):
        alice.upload_diagnostics(df=frame)


def test_the_rest_api_queues_diagnostics_and_shows_the_same_report(world: World) -> None:
    """Our own REST route beside numerapi's calls: same service, same worker, same numbers."""
    frame = predictions(world.built)
    headers = {"Authorization": f"Token {world.alice[0]}${world.alice[1]}"}
    path = f"{world.base_url}/api/v1/models/{world.alice_model}/diagnostics"
    upload = {"file": ("validation_preds.csv", frame.to_csv(index=False).encode())}
    queued = httpx.post(path, files=upload, headers=headers)
    assert queued.status_code == 202, queued.text
    assert queued.json()["status"] == "pending" and queued.json()["report"] is None
    assert queued.json()["request_number"] == 1

    run_worker_step(world)
    done = httpx.get(f"{path}/{queued.json()['id']}", headers=headers).json()
    assert done["status"] == "done" and done["request_number"] == 1
    per_era = pd.DataFrame(done["report"]["per_era"]).set_index("era")
    expected = expected_per_era(world.built, frame)
    np.testing.assert_allclose(per_era["corr"], expected["corr"], atol=1e-9)
    assert [row["id"] for row in httpx.get(path, headers=headers).json()] == [done["id"]]
