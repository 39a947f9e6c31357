"""Diagnostics: requests, the exclusive claim, scoring against numerai-tools, the worker."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from numerai_tools.scoring import (
    correlation_contribution,
    feature_neutral_corr,
    max_feature_correlation,
    numerai_corr,
)
from sqlalchemy import Engine, event, func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Account, Cadence, Diagnostics, DiagnosticsStatus, Rules
from crowdquant.db.session import transaction
from crowdquant.scoring.diagnostics import ValidationEras
from crowdquant.scoring.validation import row_limit
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.datasets import publish_dataset_version
from crowdquant.tournament.diagnostics import (
    INTERNAL_ERROR,
    STALE_ERROR,
    DiagnosticsWorker,
    NoValidationData,
    StoredValidationLoader,
    UnknownDiagnostics,
    ValidationSet,
    claim_next_diagnostics,
    diagnostics_upload_key,
    fail_stale_diagnostics,
    get_diagnostics,
    request_diagnostics,
    run_next_diagnostics,
)
from crowdquant.tournament.models import NotYourModel, UnknownModel, create_model
from crowdquant.tournament.submissions import UploadTooLarge
from crowdquant.tournament.tournaments import create_tournament
from crowdquant.tournament.uploads import NotAnUpload, NothingUploaded

from ..scoring.test_validation_limits import parquet_bomb
from .live_market import build_dataset_version, local_storage, stored_bytes
from .validation_bombs import decompression_bomb, resident_mb, small_pool

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
FEATURE_SET = "medium"
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("diagnostics"))


@dataclass
class World:
    sessions: sessionmaker[Session]
    clock: ManualClock
    storage: LocalStorage
    built: DatasetVersion
    alice: Account
    bob: Account
    alice_model: uuid.UUID
    bob_model: uuid.UUID

    def loader(self) -> StoredValidationLoader:
        return StoredValidationLoader(self.storage, feature_set=FEATURE_SET)


@pytest.fixture
def world(sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion) -> World:
    clock = ManualClock(T0)
    storage = local_storage(tmp_path / "files")
    with transaction(sessions) as session:
        publish_dataset_version(session, clock, storage, built)
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        create_tournament(session, clock, 9, "unpublished", Rules.CLASSIC, Cadence.DAILY, "v9")
        alice = sign_up(session, clock, "alice", "alice@example.org", "x" * 10, hasher=CHEAP)
        bob = sign_up(session, clock, "bob", "bob@example.org", "x" * 10, hasher=CHEAP)
        alice_model = create_model(session, clock, alice, 8, "alice_model").id
        bob_model = create_model(session, clock, bob, 8, "bob_model").id
    return World(sessions, clock, storage, built, alice, bob, alice_model, bob_model)


def predictions(built: DatasetVersion, seed: int = 0) -> pd.DataFrame:
    """Validation predictions with some skill and some feature exposure, in [0, 1]."""
    validation = built.frame("validation")
    first = built.features_json()["feature_sets"][FEATURE_SET][0]
    rng = np.random.default_rng(seed)
    raw = validation["target"] + 0.05 * validation[first] + rng.normal(0, 3.0, len(validation))
    values = raw.groupby(validation["era"]).rank(pct=True).to_numpy()
    return pd.DataFrame({"id": validation.index.astype(str), "prediction": values})


def csv_bytes(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def upload(world: World, account: Account, model_id: uuid.UUID, data: bytes) -> str:
    with transaction(world.sessions) as session:
        key = diagnostics_upload_key(session, account, model_id, "my predictions.csv")
    world.storage.write(key, data)
    return key


def request(world: World, account: Account, model_id: uuid.UUID, key: str) -> Diagnostics:
    with transaction(world.sessions) as session:
        return request_diagnostics(session, world.clock, world.storage, account, model_id, key)


def queue(world: World, data: bytes, *, bob: bool = False) -> Diagnostics:
    """Upload `data` for alice's (or bob's) model and request diagnostics of it."""
    account, model = (world.bob, world.bob_model) if bob else (world.alice, world.alice_model)
    return request(world, account, model, upload(world, account, model, data))


def all_rows(world: World) -> list[Diagnostics]:
    with world.sessions() as session:
        return list(session.scalars(select(Diagnostics).order_by(Diagnostics.created_at)))


def stored_keys(world: World) -> list[str]:
    return [stored.key for stored in world.storage.list()]


# --- requests ----------------------------------------------------------------------------------


def test_a_request_moves_the_upload_and_numbers_count_up(world: World) -> None:
    data = csv_bytes(predictions(world.built))
    key = upload(world, world.alice, world.alice_model, data)
    assert key.startswith(f"uploads/{world.alice_model.hex}/")
    assert key.endswith("/my_predictions.csv")
    first = request(world, world.alice, world.alice_model, key)
    assert (first.status, first.request_number) == (DiagnosticsStatus.PENDING, 1)
    assert (first.dataset_version, first.filename) == ("v1", "my_predictions.csv")
    assert first.file_key.startswith(f"diagnostics/{world.alice_model.hex}/{first.id.hex}/")
    assert not world.storage.exists(key)
    assert stored_bytes(world.storage, first.file_key) == data

    world.clock.advance(timedelta(minutes=1))
    second = queue(world, data)
    bobs = queue(world, data, bob=True)
    assert (second.request_number, bobs.request_number) == (2, 1)
    assert [row.status for row in all_rows(world)] == [DiagnosticsStatus.PENDING] * 3


def test_refusals_write_nothing(world: World) -> None:
    data = csv_bytes(predictions(world.built))
    alices_upload = upload(world, world.alice, world.alice_model, data)
    bobs_upload = upload(world, world.bob, world.bob_model, data)
    with transaction(world.sessions) as session:
        other = create_model(session, world.clock, world.alice, 9, "alice_nine").id
    before = stored_keys(world)

    attempts: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: request(world, world.bob, world.alice_model, alices_upload),
            NotYourModel,
            "that model belongs to another account",
        ),
        (
            lambda: request(world, world.alice, uuid.uuid4(), alices_upload),
            UnknownModel,
            "no model has that id",
        ),
        (
            lambda: request(world, world.alice, world.alice_model, bobs_upload),
            NotAnUpload,
            "is not an upload of this model: use diagnosticsUploadAuth",
        ),
        (
            lambda: request(world, world.alice, world.alice_model, "../../etc/passwd"),
            NotAnUpload,
            "is not a valid upload key",
        ),
        (
            lambda: request(
                world,
                world.alice,
                world.alice_model,
                f"uploads/{world.alice_model.hex}/{uuid.uuid4().hex}/never.csv",
            ),
            NothingUploaded,
            "nothing was uploaded as",
        ),
        (
            lambda: request(
                world, world.alice, other, alices_upload.replace(world.alice_model.hex, other.hex)
            ),
            NoValidationData,
            "dataset version 'v9' has no published validation.parquet",
        ),
    ]
    for attempt, error, message in attempts:
        with pytest.raises(error, match=message):
            attempt()
    with (
        transaction(world.sessions) as session,
        pytest.raises(UploadTooLarge, match="over the limit of 100 bytes"),
    ):
        request_diagnostics(
            session,
            world.clock,
            world.storage,
            world.alice,
            world.alice_model,
            alices_upload,
            max_bytes=100,
        )
    assert all_rows(world) == []
    assert stored_keys(world) == before


def test_get_diagnostics_shows_only_ones_own(world: World) -> None:
    data = csv_bytes(predictions(world.built))
    with transaction(world.sessions) as session, pytest.raises(UnknownDiagnostics, match="no diag"):
        get_diagnostics(session, world.alice, world.alice_model)
    first = queue(world, data)
    second = queue(world, data)
    with world.sessions() as session:
        assert get_diagnostics(session, world.alice, world.alice_model).id == second.id
        assert (
            get_diagnostics(session, world.alice, world.alice_model, str(first.id)).id == first.id
        )
        with pytest.raises(NotYourModel):
            get_diagnostics(session, world.bob, world.alice_model, first.id)
        for wrong in ("nonsense", str(uuid.uuid4())):
            with pytest.raises(UnknownDiagnostics):
                get_diagnostics(session, world.alice, world.alice_model, wrong)
    bobs = queue(world, data, bob=True)
    with world.sessions() as session, pytest.raises(UnknownDiagnostics):
        get_diagnostics(session, world.alice, world.alice_model, bobs.id)  # through one's own


# --- the claim ---------------------------------------------------------------------------------


def test_the_claim_is_exclusive(world: World) -> None:
    data = csv_bytes(predictions(world.built))
    queued = []
    for _ in range(3):
        queued.append(queue(world, data).id)
        world.clock.advance(timedelta(seconds=1))  # created_at orders the queue

    # in order, oldest first, and once only
    with transaction(world.sessions) as session:
        claimed = claim_next_diagnostics(session, world.clock)
        assert claimed is not None and claimed.id == queued[0]
        assert (claimed.status, claimed.started_at) == (
            DiagnosticsStatus.RUNNING,
            world.clock.now(),
        )

    # racing workers: every row is claimed by exactly one
    start = threading.Barrier(4)
    got: list[uuid.UUID] = []
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            start.wait()
            while True:
                with transaction(world.sessions) as session:
                    row = claim_next_diagnostics(session, world.clock)
                if row is None:
                    return
                got.append(row.id)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    assert sorted(got) == sorted(queued[1:])
    assert [row.status for row in all_rows(world)] == [DiagnosticsStatus.RUNNING] * 3
    assert run_next_diagnostics(world.sessions, world.storage, world.clock, world.loader()) is None


# --- running -----------------------------------------------------------------------------------


def test_a_bad_file_fails_with_a_readable_error(world: World) -> None:
    frame = predictions(world.built)
    half = queue(world, csv_bytes(frame.iloc[::2]))
    world.clock.advance(timedelta(seconds=1))
    garbage = queue(world, b"\x00\x01 not a table")
    loader = world.loader()
    first = run_next_diagnostics(world.sessions, world.storage, world.clock, loader)
    second = run_next_diagnostics(world.sessions, world.storage, world.clock, loader)
    assert first is not None and second is not None
    assert (first.id, second.id) == (half.id, garbage.id)
    assert first.status is DiagnosticsStatus.FAILED and first.result is None
    assert first.error is not None
    assert first.error.startswith("invalid_submission_ids: ")
    assert f"of {len(frame)} live ids are missing" in first.error
    assert second.error is not None and second.error.startswith("invalid_submission_file: ")
    assert first.finished_at == world.clock.now()


def test_a_file_of_more_rows_than_the_validation_ids_fails_before_decoding(world: World) -> None:
    rows = queue(world, parquet_bomb(2))  # 2 M rows in a few KB
    loader = world.loader()
    row = run_next_diagnostics(world.sessions, world.storage, world.clock, loader)
    assert row is not None and row.id == rows.id
    assert row.status is DiagnosticsStatus.FAILED and row.error is not None
    limit = row_limit(len(loader(row.dataset_version).ids))
    assert row.error.endswith(f"holds 2,000,000 rows, over the limit of {limit:,} rows")


def test_a_decompression_bomb_fails_its_diagnostics_in_the_pool(world: World) -> None:
    bomb = queue(world, decompression_bomb())  # 1 GiB once decoded
    before = resident_mb()
    with small_pool() as pool:
        row = run_next_diagnostics(world.sessions, world.storage, world.clock, world.loader(), pool)
    assert row is not None and row.id == bomb.id
    assert row.status is DiagnosticsStatus.FAILED and row.error is not None
    assert row.error.startswith("invalid_submission_file: ")
    assert row.error.endswith("needs more than 256 MB to read")
    assert resident_mb() - before < 64  # the worker read it, not this process


def expected_per_era(built: DatasetVersion, frame: pd.DataFrame) -> pd.DataFrame:
    """Each validation era scored by numerai-tools (and pandas), independently of ours."""
    validation = built.frame("validation")
    features = built.features_json()["feature_sets"][FEATURE_SET]
    example = built.example_predictions("validation")["prediction"]
    submitted = frame.set_index("id")["prediction"]
    rows = {}
    for era, part in validation.groupby("era"):
        part = part.sort_index()
        p = submitted.loc[part.index]
        e = example.loc[part.index]
        target = part["target"].astype(np.float64)
        rows[era] = {
            "corr": numerai_corr(p.to_frame(), target)["prediction"],
            "mmc": correlation_contribution(p.to_frame(), e, target)["prediction"],
            "fnc": feature_neutral_corr(p.to_frame(), part[features], target)["prediction"],
            "feature_exposure": max_feature_correlation(p, part[features].astype(float))[1],
            "corr_with_example_preds": p.corr(e, method="spearman"),
            "example_corr": numerai_corr(e.to_frame(), target)["prediction"],
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def test_scores_equal_numerai_tools(world: World) -> None:
    frame = predictions(world.built)
    key = upload(world, world.alice, world.alice_model, csv_bytes(frame))
    queued = request(world, world.alice, world.alice_model, key)
    world.clock.advance(timedelta(minutes=3))
    row = run_next_diagnostics(world.sessions, world.storage, world.clock, world.loader())
    assert row is not None and row.id == queued.id
    assert row.status is DiagnosticsStatus.DONE and row.error is None
    assert row.finished_at == world.clock.now() and row.started_at == world.clock.now()
    result = row.result
    assert result is not None
    assert result["request_number"] == 1 == result["summary"]["request_number"]
    assert (result["dataset_version"], result["feature_set"]) == ("v1", FEATURE_SET)
    assert result["meta_model"] == "example_predictions"
    assert result["n_rows"] == len(frame)

    expected = expected_per_era(world.built, frame)
    ours = pd.DataFrame(result["per_era"]).set_index("era")
    assert list(ours.index) == list(expected.index)
    assert ours.notna().all().all()
    np.testing.assert_allclose(ours[expected.columns].to_numpy(), expected.to_numpy(), atol=1e-9)
    assert expected["fnc"].abs().max() > 1e-3  # the features do not explain everything

    # the same as ValidationEras computes on the same rows
    validation = world.built.frame("validation")
    features = world.built.features_json()["feature_sets"][FEATURE_SET]
    example = world.built.example_predictions("validation")["prediction"].loc[validation.index]
    eras = ValidationEras(validation["era"], validation["target"], example, validation[features])
    direct = eras.score(frame.set_index("id")["prediction"].loc[validation.index])
    np.testing.assert_allclose(
        ours[["corr", "mmc", "fnc"]].to_numpy(), direct.to_numpy(), atol=1e-12
    )

    corr, mmc = expected["corr"].to_numpy(), expected["mmc"].to_numpy()
    cumulative = np.cumsum(corr)
    summary = result["summary"]
    checks = {
        "n_eras": len(expected),
        "corr_mean": corr.mean(),
        "corr_std": corr.std(),
        "corr_sharpe": corr.mean() / corr.std(),
        "corr_max_drawdown": (np.maximum.accumulate(cumulative) - cumulative).max(),
        "mmc_mean": mmc.mean(),
        "mmc_std": mmc.std(),
        "mmc_sharpe": mmc.mean() / mmc.std(),
        "corr_plus_mmc_mean": (corr + mmc).mean(),
        "corr_plus_mmc_sharpe": (corr + mmc).mean() / (corr + mmc).std(),
        "fnc_mean": expected["fnc"].mean(),
        "max_feature_exposure": expected["feature_exposure"].mean(),
        "corr_with_example_preds": expected["corr_with_example_preds"].mean(),
        "example_corr_mean": expected["example_corr"].mean(),
        "corr_corr_with_example": np.corrcoef(corr, expected["example_corr"])[0, 1],
    }
    for name, value in checks.items():
        assert summary[name] == pytest.approx(value, abs=1e-9), name
    assert summary["corr_mean"] > 0.02  # the predictions carry the target, with losing eras
    assert summary["corr_max_drawdown"] > 0


def test_the_loader_prepares_a_version_once(world: World) -> None:
    loader = world.loader()
    first = loader("v1")
    assert isinstance(first, ValidationSet) and loader("v1") is first
    assert len(first.ids) == len(world.built.frame("validation"))
    with pytest.raises(NoValidationData, match=r"'v9' has no published features\.json"):
        loader("v9")


def test_an_unexpected_crash_fails_the_job_and_stale_jobs_fail(world: World) -> None:
    data = csv_bytes(predictions(world.built))
    queued = queue(world, data)

    def broken(version: str) -> ValidationSet:
        raise RuntimeError(f"disk on fire while reading {version}")

    row = run_next_diagnostics(world.sessions, world.storage, world.clock, broken)
    assert row is not None and row.id == queued.id
    assert (row.status, row.error) == (DiagnosticsStatus.FAILED, INTERNAL_ERROR)

    # a worker that died mid-job leaves its row running; it is failed after `older_than`
    world.clock.advance(timedelta(seconds=1))
    stuck = queue(world, data)
    with transaction(world.sessions) as session:
        assert claim_next_diagnostics(session, world.clock) is not None
    world.clock.advance(timedelta(minutes=30))
    with transaction(world.sessions) as session:
        assert fail_stale_diagnostics(session, world.clock, timedelta(hours=1)) == 0
    world.clock.advance(timedelta(minutes=31))
    with transaction(world.sessions) as session:
        assert fail_stale_diagnostics(session, world.clock, timedelta(hours=1)) == 1
        failed = session.get(Diagnostics, stuck.id)
        assert failed is not None
        assert (failed.status, failed.error) == (DiagnosticsStatus.FAILED, STALE_ERROR)


# --- the worker --------------------------------------------------------------------------------


class FlakySessions:
    """A session factory whose first call fails, as a database that is briefly away."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions, self.calls = sessions, 0

    def __call__(self, **kwargs: Any) -> Session:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database unavailable")
        return self.sessions(**kwargs)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_the_worker_thread_runs_pending_diagnostics_and_stops(world: World) -> None:
    data = csv_bytes(predictions(world.built))
    queued = queue(world, data)
    flaky = FlakySessions(world.sessions)
    finished: list[uuid.UUID] = []
    worker = DiagnosticsWorker(
        flaky,  # type: ignore[arg-type]
        world.storage,
        world.clock,
        world.loader(),
        interval=0.05,
        on_done=lambda row: finished.append(row.id),
    )
    worker.start()
    try:
        wait_for(lambda: finished == [queued.id])  # the first poll failed; the loop went on
        assert [row.status for row in all_rows(world)] == [DiagnosticsStatus.DONE]
        later = queue(world, data)
        wait_for(lambda: finished == [queued.id, later.id])
    finally:
        worker.stop(timeout=30)
    assert not worker.is_alive()
    with world.sessions() as session:
        assert session.scalar(select(func.max(Diagnostics.request_number))) == 2


def test_an_idle_poll_only_reads(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """With no diagnostics pending or running, a poll writes nothing: on SQLite it never
    holds the write lock that would make another transaction's first write fail at once (a
    scheduler step, say, whose round would then open a day late in a simulation)."""
    worker = DiagnosticsWorker(
        sessions,
        local_storage(tmp_path / "files"),
        ManualClock(T0),
        StoredValidationLoader(local_storage(tmp_path / "files")),
    )
    engine = sessions.kw["bind"]
    assert isinstance(engine, Engine)
    statements: list[str] = []

    def heard(_c: object, _cursor: object, statement: str, *_: object) -> None:
        statements.append(statement.split(None, 1)[0].upper())

    event.listen(engine, "before_cursor_execute", heard)
    try:
        assert worker.poll() == 0
    finally:
        event.remove(engine, "before_cursor_execute", heard)
    assert "SELECT" in statements
    assert not {"UPDATE", "INSERT", "DELETE"} & set(statements)


def test_fnc_uses_the_versions_fnc_set_and_medium_where_it_has_none() -> None:
    from crowdquant.tournament.diagnostics.validation import (
        DEFAULT_FEATURE_SET,
        available_feature_set,
    )

    assert DEFAULT_FEATURE_SET == "fncv3_features"
    both = {"medium": ["a", "b"], "fncv3_features": ["a"]}
    assert available_feature_set(both, DEFAULT_FEATURE_SET) == "fncv3_features"
    assert available_feature_set({"medium": ["a"]}, DEFAULT_FEATURE_SET) == "medium"
    assert available_feature_set({"medium": ["a"]}, "small") == "small"  # asked for: no swap
