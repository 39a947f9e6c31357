"""Uploaded models run when a round opens: a job per upload, claimed with a lease, run in
the sandbox, its predictions the model's submission; on both backends."""

from __future__ import annotations

import io
import os
from datetime import timedelta
from pathlib import Path

import cloudpickle
import pandas as pd
import pytest
from argon2 import PasswordHasher
from distributed import Client, LocalCluster
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.compute.runtime import Runtimes, default_runtime, lock_hash
from crowdquant.compute.sandbox import SandboxLimits
from crowdquant.db.models import (
    Cadence,
    ComputeJob,
    ComputeJobStatus,
    Model,
    Rules,
    Submission,
    SubmissionStatus,
)
from crowdquant.db.session import transaction
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.compute_jobs import SEALED_LOG, ComputeWorker, claim_job
from crowdquant.tournament.model_uploads import (
    ModelUploadRejected,
    model_upload_of,
    run_by_hand,
    upload_model,
)
from crowdquant.tournament.models import create_model
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import RoundOpened, Scheduler
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament

from .live_market import MONDAY, feed_publisher, local_storage

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
QUICK = SandboxLimits(memory_bytes=2 << 30, cpu_seconds=60, wall_seconds=60, processes=32)
HOUR = timedelta(hours=1)
TEST_RUNTIMES = Path(__file__).parents[1] / "compute" / "runtimes"
"""A small named runtime, `tiny`, to build in the tests."""


def ranks_features(live: pd.DataFrame) -> pd.DataFrame:
    features = live[[c for c in live.columns if str(c).startswith("feature")]]
    return pd.DataFrame({"prediction": features.sum(axis=1).rank(pct=True)}, index=live.index)


def exits_early(live: pd.DataFrame) -> pd.DataFrame:
    os._exit(0)


def _pickled(predict: object) -> bytes:
    cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
    try:
        return cloudpickle.dumps(predict)
    finally:
        cloudpickle.unregister_pickle_by_value(__import__(__name__, fromlist=["_"]))


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(MONDAY)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return local_storage(tmp_path / "files")


def _model(sessions: sessionmaker[Session], clock: ManualClock, name: str) -> Model:
    with transaction(sessions) as session:
        account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
        return create_model(session, clock, account, 8, f"{name}_model")


def _upload(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    model: Model,
    data: bytes,
) -> None:
    with transaction(sessions) as session:
        owner = session.get_one(Model, model.id).account
        upload_model(session, clock, storage, owner, model.id, "model.pkl", data)


def _open_round(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    scheduler = Scheduler(
        sessions, clock, {8: TournamentRuntime(feed_publisher(tmp_path / "files"))}
    )
    for _ in range(48):
        if any(isinstance(event, RoundOpened) for event in scheduler.tick()):
            return
        clock.advance(HOUR)
    raise AssertionError("no round opened")


@pytest.fixture
def tournament(sessions: sessionmaker[Session], clock: ManualClock) -> None:
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")


def _jobs(sessions: sessionmaker[Session]) -> list[ComputeJob]:
    with sessions() as session:
        return list(session.scalars(select(ComputeJob).order_by(ComputeJob.created_at)))


@pytest.mark.usefixtures("tournament")
def test_an_uploaded_model_submits_when_a_round_opens_even_after_its_worker_died(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    model = _model(sessions, clock, "alice")
    _upload(sessions, clock, storage, model, _pickled(ranks_features))

    _open_round(sessions, clock, storage, tmp_path)
    [queued] = _jobs(sessions)
    assert queued.status is ComputeJobStatus.PENDING
    # a worker claims it and dies; once its lease has run out another runs it
    assert claim_job(sessions, "gone", clock.now(), timedelta(minutes=5)) == queued.id
    worker = ComputeWorker(sessions, clock, storage, limits=QUICK, work_dir=tmp_path)
    assert worker.run_once() is None
    clock.advance(timedelta(minutes=6))
    assert worker.run_until_idle() == [queued.id]

    [job] = _jobs(sessions)
    assert job.status is ComputeJobStatus.SUCCESS, (job.message, job.log)
    assert [entry["status"] for entry in job.history] == [
        "pending",
        "running",
        "running",
        "validating",
        "success",
    ]
    assert "again" in job.history[2]["description"]
    assert job.attempts == 2 and job.lease_holder is None
    assert job.runtime == "default" and job.runtime_lock_hash == default_runtime().lock_hash
    with sessions() as session:
        [submission] = session.scalars(select(Submission)).all()
        assert submission.id == job.submission_id
        assert submission.model_id == model.id
        assert submission.status is SubmissionStatus.VALID
        assert submission.n_rows is not None and submission.n_rows > 0
    assert worker.run_until_idle() == []  # one job per upload and round


@pytest.mark.usefixtures("tournament")
def test_a_model_that_exits_early_fails_and_keeps_its_history(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    model = _model(sessions, clock, "bob")
    _upload(sessions, clock, storage, model, _pickled(exits_early))
    _open_round(sessions, clock, storage, tmp_path)

    ComputeWorker(sessions, clock, storage, limits=QUICK, work_dir=tmp_path).run_until_idle()

    [job] = _jobs(sessions)
    assert job.status is ComputeJobStatus.FAILED
    assert job.failure == "exited_early"
    assert "exited before finishing" in (job.message or "")
    assert [entry["status"] for entry in job.history] == ["pending", "running", "failed"]
    assert job.submission_id is None
    with sessions() as session:
        assert session.scalars(select(Submission)).all() == []


@pytest.mark.usefixtures("tournament")
def test_a_new_upload_replaces_the_models_last_and_an_empty_one_is_refused(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage
) -> None:
    model = _model(sessions, clock, "carol")
    _upload(sessions, clock, storage, model, b"first")
    _upload(sessions, clock, storage, model, b"second")

    with transaction(sessions) as session:
        found = model_upload_of(session, session.get_one(Model, model.id))
        assert found is not None and found.size == len(b"second")
        owner = session.get_one(Model, model.id).account
        with pytest.raises(ModelUploadRejected, match="empty"):
            upload_model(session, clock, storage, owner, model.id, "m.pkl", b"")


@pytest.mark.usefixtures("tournament")
def test_a_job_is_claimed_once_and_a_job_whose_workers_keep_dying_is_an_error(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    model = _model(sessions, clock, "dave")
    _upload(sessions, clock, storage, model, _pickled(ranks_features))
    _open_round(sessions, clock, storage, tmp_path)
    lease = timedelta(minutes=5)

    [job] = _jobs(sessions)
    assert claim_job(sessions, "first", clock.now(), lease) == job.id
    assert claim_job(sessions, "second", clock.now(), lease) is None  # still held
    for worker in ("second", "third"):
        clock.advance(lease + timedelta(seconds=1))
        assert claim_job(sessions, worker, clock.now(), lease) == job.id
    clock.advance(lease + timedelta(seconds=1))
    assert claim_job(sessions, "fourth", clock.now(), lease) is None

    [job] = _jobs(sessions)
    assert job.status is ComputeJobStatus.ERROR
    assert job.failure == "error" and "stopped 3 times" in (job.message or "")


@pytest.mark.usefixtures("tournament")
def test_without_bubblewrap_a_job_is_the_platforms_error(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    storage: LocalStorage,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = _model(sessions, clock, "erin")
    _upload(sessions, clock, storage, model, _pickled(ranks_features))
    _open_round(sessions, clock, storage, tmp_path)
    monkeypatch.setattr("crowdquant.compute.sandbox.shutil.which", lambda tool: None)

    ComputeWorker(sessions, clock, storage, limits=QUICK, work_dir=tmp_path).run_until_idle()

    [job] = _jobs(sessions)
    assert job.status is ComputeJobStatus.ERROR
    assert "is not installed" in (job.message or "")


@pytest.mark.usefixtures("tournament")
def test_a_job_runs_under_the_named_runtime_its_upload_asks_for_once_it_is_built(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    model = _model(sessions, clock, "frank")
    _upload(sessions, clock, storage, model, _pickled(ranks_features))
    with transaction(sessions) as session:
        upload = model_upload_of(session, session.get_one(Model, model.id))
        assert upload is not None
        upload.runtime = "tiny"
    _open_round(sessions, clock, storage, tmp_path)
    runtimes = Runtimes(tmp_path / "runtimes", shipped=TEST_RUNTIMES)
    worker = ComputeWorker(
        sessions, clock, storage, limits=QUICK, runtimes=runtimes, work_dir=tmp_path
    )

    worker.run_until_idle()
    [job] = _jobs(sessions)
    assert job.status is ComputeJobStatus.ERROR and job.failure == "error"
    assert "run `crowdquant compute runtime build tiny`" in (job.message or "")

    built = runtimes.build("tiny")
    with transaction(sessions) as session:
        owned = session.get_one(Model, model.id)
        run_by_hand(session, clock, owned.account, owned)
    worker.run_until_idle()

    [job] = _jobs(sessions)
    assert job.status is ComputeJobStatus.SUCCESS, (job.message, job.log)
    assert job.runtime == "tiny" and job.runtime_lock_hash == built.lock_hash
    assert built.lock_hash == lock_hash(TEST_RUNTIMES / "tiny" / "uv.lock")
    assert [entry["status"] for entry in job.history] == [
        "pending",
        "running",
        "error",
        "pending",
        "running",
        "validating",
        "success",
    ]


@pytest.mark.usefixtures("tournament")
def test_a_dask_cluster_runs_a_rounds_jobs_at_once_under_the_workers_leases(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    for name in ("gina", "hugo", "ivan"):
        model = _model(sessions, clock, name)
        _upload(sessions, clock, storage, model, _pickled(ranks_features))
    _open_round(sessions, clock, storage, tmp_path)
    held = claim_job(sessions, "elsewhere", clock.now(), timedelta(hours=1))
    with transaction(sessions) as session:
        free = session.scalars(select(ComputeJob).where(ComputeJob.id != held)).first()
        assert free is not None
        free.upload.runtime = "py311"  # shipped, not built on the cluster
        unbuilt = free.id

    with (
        LocalCluster(n_workers=1, threads_per_worker=2, processes=False) as cluster,
        Client(cluster) as client,
    ):
        worker = ComputeWorker(
            sessions,
            clock,
            storage,
            limits=QUICK,
            runtimes=Runtimes(tmp_path / "runtimes"),
            cluster=client,
        )
        assert len(worker.run_batch()) == 2  # one per thread, the held job left alone
        assert worker.run_until_idle() == []

    jobs = {job.id: job for job in _jobs(sessions)}
    error = jobs.pop(unbuilt)
    assert error.status is ComputeJobStatus.ERROR
    assert "run `crowdquant compute runtime build py311`" in (error.message or "")
    other = jobs.pop(held)  # type: ignore[arg-type]
    assert other.status is ComputeJobStatus.RUNNING and other.lease_holder == "elsewhere"
    assert len(jobs) == 1
    for job in jobs.values():
        assert job.status is ComputeJobStatus.SUCCESS, (job.message, job.log)
        assert job.attempts == 1 and job.lease_holder is None and job.submission_id
        assert f"claimed by {worker.name}" in job.history[1]["description"]
        assert job.runtime == "default" and job.runtime_lock_hash == default_runtime().lock_hash


def leaks_through_its_output(live: pd.DataFrame) -> pd.DataFrame:
    """Prints the live features and adds rows whose ids carry them."""
    print(live.to_csv())
    ranked = ranks_features(live)
    extra = pd.DataFrame(
        {"prediction": 0.5}, index=[f"leak-{value}" for value in live.iloc[0, :5].tolist()]
    )
    return pd.concat([ranked, extra])


def raises_with_the_features(live: pd.DataFrame) -> pd.DataFrame:
    raise ValueError(f"LEAK {live.iloc[0].tolist()}")


def test_a_closed_live_run_lets_out_only_its_validated_predictions(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage, tmp_path: Path
) -> None:
    with transaction(sessions) as session:
        create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1", {"live": "closed"}
        )
    leaky, failing = _model(sessions, clock, "alice"), _model(sessions, clock, "bob")
    _upload(sessions, clock, storage, leaky, _pickled(leaks_through_its_output))
    _upload(sessions, clock, storage, failing, _pickled(raises_with_the_features))
    _open_round(sessions, clock, storage, tmp_path)
    worker = ComputeWorker(sessions, clock, storage, limits=QUICK, work_dir=tmp_path)
    assert len(worker.run_until_idle()) == 2

    with sessions() as session:
        jobs = {job.upload.model_id: job for job in session.scalars(select(ComputeJob))}
        done, failed = jobs[leaky.id], jobs[failing.id]
        assert done.status is ComputeJobStatus.SUCCESS, done.message
        assert failed.status is ComputeJobStatus.FAILED
        for job in (done, failed):
            assert job.log == SEALED_LOG
            assert "LEAK" not in (job.message or "") and "feature" not in (job.message or "")
            assert all("LEAK" not in entry["description"] for entry in job.history)
        submission = session.get_one(Submission, done.submission_id)
        with storage.read(submission.file_key) as chunks:
            stored = pd.read_parquet(io.BytesIO(b"".join(chunks)))
        live = live_ids_of_round(storage, submission.round)
    assert list(stored.columns) == ["id", "prediction"]
    assert sorted(stored["id"]) == sorted(live.astype(str))  # no extra rows
