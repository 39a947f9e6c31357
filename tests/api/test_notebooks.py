"""Numerai's example notebooks, end to end against the served app: the participant's script
in `examples/numerai_participant.py` (hello_numerai, target_ensemble and
feature_neutralization's calls, files, columns and assertions, with LightGBM) runs with only
its URL line changed, on a small synthetic version named `v5.3`, and its upload is accepted;
so does the README's submission script, which names the version `v5.2` (an alias of `v5.3`).
"""

from __future__ import annotations

import runpy
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.build import build_version
from crowdquant.data.config import BenchmarkConfig, DatasetConfig, ExampleModelConfig
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig
from crowdquant.db.models import ApiScope, Cadence, Rules, Submission, SubmissionStatus
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.calendar import RoundTimes
from crowdquant.tournament.datasets import publish_dataset_version, set_dataset_alias
from crowdquant.tournament.meta_model_file import publish_meta_model
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import open_round
from crowdquant.tournament.runtime import tournament_runtime
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament

from ..tournament.live_market import KEYS, local_storage
from .server import serve
from .test_numerapi import CHEAP

ROOT = Path(__file__).parents[2]
SCRIPT = ROOT / "examples" / "numerai_participant.py"
README = ROOT / "README.md"
URL_LINE = 'numerapi.base_api.API_TOURNAMENT_URL = "https://crowdquant.example.org/graphql"'
MARKET = SyntheticConfig(n_stocks=100, n_weeks=110, seed=7, alpha_strength=2e-3)  # learnable
CONFIG = DatasetConfig(
    example_model=ExampleModelConfig(max_iter=5), benchmark=BenchmarkConfig(n_estimators=5)
)


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """An operator's home with version `v5.3` built from a small synthetic market."""
    settings = Settings(mode="local", home=tmp_path_factory.mktemp("home"))
    KEYS.save(settings.keyfile)
    build_version(
        SyntheticSource(market=MARKET),
        CONFIG,
        KEYS,
        settings.datasets_dir,
        settings.operator_dir,
        version="v5.3",
    )
    return settings


@dataclass
class World:
    clock: ManualClock
    sessions: sessionmaker[Session]
    public_id: str
    secret: str
    model_id: str
    live_ids: pd.Index


@pytest.fixture
def world(sessions: sessionmaker[Session], home: Settings, tmp_path: Path) -> Iterator[World]:
    """Tournament 8 on `v5.3` (its files and meta model published), a round open on the
    market's next week, and alice with a model and an API key, served over HTTP."""
    market_end = datetime.combine(MARKET.start, datetime.min.time(), UTC) + timedelta(
        weeks=MARKET.n_weeks
    )
    clock = ManualClock(market_end + timedelta(weeks=1, hours=12))
    storage = local_storage(tmp_path / "files")
    version = DatasetVersion.open("v5.3", home.datasets_dir, home.operator_dir)
    with transaction(sessions) as session:
        tournament = create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, version
        )
        publish_dataset_version(session, clock, storage, version)
        publish_meta_model(session, clock, storage, version, tournament, _no_rounds)
        account = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
        model_id = str(create_model(session, clock, account, 8, "alice_model").id)
        key = create_api_key(session, clock, account, "laptop", [ApiScope.READ, ApiScope.UPLOAD])
    runtime = tournament_runtime(home, tournament, storage)
    assert runtime.publisher is not None
    now = clock.now()
    times = RoundTimes(
        open_time=now - timedelta(hours=1),
        close_staking_time=now + timedelta(days=1),
        close_time=now + timedelta(days=2),
        era_date=now.date() - timedelta(days=1),
        resolve_time=now + timedelta(days=30),
    )
    with transaction(sessions) as session:
        round_ = open_round(session, clock, tournament, runtime.publisher, times=times)
        live_ids = live_ids_of_round(storage, round_)
    app = create_app(home, clock=clock, sessions=sessions, storage=storage)
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield World(clock, sessions, key.public_id, key.secret, model_id, live_ids)
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def _no_rounds(round_: object) -> pd.Series:
    raise AssertionError("a new tournament has no resolved round")


def _run_served(
    source: str, world: World, folder: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    """Run a participant's script in `folder` with its URL line pointed at the served app
    (nothing else changed) and alice's key and model in its environment; its globals."""
    assert source.count(URL_LINE) == 1
    served_url = numerapi.base_api.API_TOURNAMENT_URL
    script = folder / "script.py"
    script.write_text(
        source.replace(URL_LINE, f"numerapi.base_api.API_TOURNAMENT_URL = {served_url!r}")
    )
    monkeypatch.chdir(folder)
    monkeypatch.setenv("NUMERAI_PUBLIC_ID", world.public_id)
    monkeypatch.setenv("NUMERAI_SECRET_KEY", world.secret)
    monkeypatch.setenv("NUMERAI_MODEL_ID", world.model_id)
    return runpy.run_path(str(script), run_name="__main__")


def _accepted(world: World, submission_id: str, filename: str) -> None:
    """The upload is the round's valid submission, as numerapi and the database say."""
    napi = numerapi.NumerAPI(world.public_id, world.secret)
    assert napi.get_submission_filenames(model_id=world.model_id) == [
        {"round_num": 1, "tournament": 8, "filename": filename}
    ]
    assert submission_id in {entry["id"] for entry in napi.submission_ids(world.model_id)}
    with world.sessions() as session:
        stored = session.get(Submission, uuid.UUID(submission_id))
        assert stored is not None
        assert stored.status is SubmissionStatus.VALID
        assert stored.n_rows == len(world.live_ids)


def test_the_notebooks_path_runs_unchanged_but_for_its_url(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = _run_served(SCRIPT.read_text(), world, tmp_path, monkeypatch)

    # what the notebooks downloaded, as they name it
    assert "v5.3" in ran["dataset_versions"]
    for name in ("features.json", "train.parquet", "validation.parquet", "meta_model.parquet",
                 "validation_benchmark_models.parquet", "live.parquet",
                 "live_benchmark_models.parquet"):  # fmt: skip
        assert f"v5.3/{name}" in ran["current_version_files"], name
        assert (tmp_path / "v5.3" / name).stat().st_size > 0, name
    assert {"target_ender_20", "target_victor_20"} <= set(ran["targets"])
    assert len(ran["feature_set"]) == 42

    # the meta model and the benchmark models cover every validation id
    validation = ran["validation"]
    assert validation[["meta_model", "v53_lgbm_ender20", "prediction"]].notna().all().all()
    assert np.isfinite(ran["mmc_mean"])
    assert ran["corr_mean"] > 0  # features and targets line up: the planted alpha is learnt
    assert ran["per_era_corr"].index.equals(pd.Index(sorted(validation["era"].unique())))

    # the live predictions: one per live id, accepted for the open round
    submission = ran["submission"]
    assert set(submission.index) == set(world.live_ids)
    assert submission["prediction"].between(0, 1).all()
    _accepted(world, ran["submission_id"], "predictions.csv")


def test_the_readme_script_runs_unchanged_but_for_its_url(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    readme = README.read_text()
    block = readme.split("<!-- participant-script -->\n```python\n", 1)[1].split("```", 1)[0]
    with transaction(world.sessions) as session:
        set_dataset_alias(session, world.clock, "v5.2", "v5.3")  # as the README says

    ran = _run_served(block, world, tmp_path, monkeypatch)

    assert ran["current_round"] == 1
    assert set(ran["submission"].index) == set(world.live_ids)
    submission_id = ran["napi"].submission_ids(world.model_id)[0]["id"]
    _accepted(world, submission_id, "prediction_1.csv")
