"""Jobs that run uploaded models on a round's live features, in the sandbox.

When a round opens, `queue_jobs` adds a pending job for each model of its tournament that
has an upload (the scheduler does it in the transaction that opens the round; a worker also
catches up on open rounds without them). A `ComputeWorker` claims jobs with a lease
(`claim_job`: a compare-and-set on the job's status and lease, so two workers never run one
job; a job whose worker died is claimed again once its lease has run out, up to
`MAX_ATTEMPTS` claims) and runs each in the sandbox (`compute.sandbox.run_model`) under the
runtime its upload asks for (`compute.runtime.Runtimes`: the server's own, or a named one
built from its lock; one not built is the platform's error, naming the command that builds
it): one at a time on this machine or, given a Dask cluster
(`Settings.compute_dask_scheduler`), as many at a time as the cluster has threads, each on
one of its workers (`compute.cluster.run_on_worker`; the claims, leases and statuses stay
with the worker that submitted them). Then, in validating, it records the predictions as
the model's submission to the round, validated as any upload
(`submissions.submit_predictions`, with the worker's `Validator`: in `serve`, the
validation pool, so that the server never decodes a model's output itself).

A job ends success (with its submission), failed (the model's fault: the sandbox's typed
failure, or predictions the submission rules refuse) or error (the platform's: no sandbox,
a runtime not built, an unreadable live file, a worker that died too often). The runtime
that ran it (its name and lock hash) is kept with the job. Every status is kept in the job's
`history`; the end of the run's output is its `log`.

In a closed-live tournament (`live_mode`) nothing the model could write leaves the sandbox
but its validated predictions: the job keeps no log, its messages are the kind of failure
only (`sealed`), and the file recorded as its submission (which its owner may download) is
written afresh from the validated predictions: one row per live id, columns ``id`` and the
prediction column, none of the model's metadata or extra rows (`canonical_predictions`).
The output read back is bounded as any upload's: at most the sandbox's file size limit,
at most the round's live rows and a margin.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import tempfile
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.compute.cluster import run_on_worker
from crowdquant.compute.runtime import (
    DEFAULT_RUNTIME,
    Runtime,
    RuntimeProblem,
    Runtimes,
    default_runtime,
)
from crowdquant.compute.sandbox import (
    Failure,
    SandboxLimits,
    SandboxResult,
    SandboxUnavailable,
    run_model,
)
from crowdquant.db.lease import take_row_lease
from crowdquant.db.models import (
    Account,
    ComputeJob,
    ComputeJobStatus,
    Model,
    ModelUpload,
    Round,
    RoundStatus,
    SubmissionStatus,
)
from crowdquant.db.session import transaction
from crowdquant.scoring.validation import DEFAULT_MAX_BYTES, LiveIds, ValidatedSubmission
from crowdquant.storage import FileStorage
from crowdquant.tournament.live_mode import is_closed_live
from crowdquant.tournament.submissions import (
    SubmissionRejected,
    live_file_key,
    submit_predictions,
)
from crowdquant.tournament.validator import IN_PROCESS, Validator

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
"""Claims of one job before a worker that keeps dying is the platform's error."""
LEASE_MARGIN = timedelta(minutes=2)
"""A claim lasts the run's wall-clock limit and this."""
FINISHED = (ComputeJobStatus.SUCCESS, ComputeJobStatus.FAILED, ComputeJobStatus.ERROR)
SEALED_LOG = "a closed-live tournament keeps no log of its runs: it could carry live features"


def canonical_predictions(validated: ValidatedSubmission) -> bytes:
    """The validated predictions written afresh: columns ``id`` and the prediction column,
    the live ids only, no metadata of the model's own."""
    frame = validated.predictions.rename(validated.prediction_column).reset_index()
    buffer = io.BytesIO()
    frame.to_parquet(buffer, engine="pyarrow", index=False)
    return buffer.getvalue()


def sealed(result: SandboxResult) -> SandboxResult:
    """What of a run in a closed-live tournament may leave the sandbox: its predictions and
    the kind of its failure, never its log or a message the model could have written."""
    message = (
        "the predictions were written"
        if result.failure is None
        else "the details stay in the sandbox in a closed-live tournament"
    )
    return dataclasses.replace(result, log=SEALED_LOG, message=message)


def _status(job: ComputeJob, status: ComputeJobStatus, description: str, at: datetime) -> None:
    job.status = status
    job.history = [
        *job.history,
        {"status": status.value, "description": description, "at": at.isoformat()},
    ]


def queue_jobs(session: Session, round_: Round, now: datetime) -> list[ComputeJob]:
    """A pending job for each model of `round_`'s tournament with an enabled upload and no
    job for the round yet; returns those added."""
    uploads = session.scalars(
        select(ModelUpload)
        .join(Model, Model.id == ModelUpload.model_id)
        .where(Model.tournament_id == round_.tournament_id, ModelUpload.enabled.is_(True))
        .order_by(ModelUpload.model_id, ModelUpload.created_at.desc())
    ).all()
    newest: dict[uuid.UUID, ModelUpload] = {}
    for upload in uploads:
        newest.setdefault(upload.model_id, upload)
    queued = set(
        session.scalars(
            select(ComputeJob.upload_id).where(
                ComputeJob.round_id == round_.id,
                ComputeJob.upload_id.in_([u.id for u in newest.values()]),
            )
        )
    )
    added = []
    for upload in newest.values():
        if upload.id in queued:
            continue
        job = ComputeJob(
            upload_id=upload.id, round_id=round_.id, history=[], attempts=0, created_at=now
        )
        _status(job, ComputeJobStatus.PENDING, f"round {round_.number} opened", now)
        session.add(job)
        added.append(job)
    session.flush()
    return added


def queue_open_rounds(session: Session, now: datetime) -> list[ComputeJob]:
    """`queue_jobs` for every open round."""
    rounds = session.scalars(select(Round).where(Round.status == RoundStatus.OPEN)).all()
    return [job for round_ in rounds for job in queue_jobs(session, round_, now)]


def claim_job(
    sessions: sessionmaker[Session], worker: str, now: datetime, lease: timedelta
) -> uuid.UUID | None:
    """Claim the oldest job waiting to run, or running under a lease that ran out, for
    `worker` until `now + lease`; None if there is none."""
    with transaction(sessions) as session:
        waiting = session.execute(
            select(ComputeJob.id, ComputeJob.status, ComputeJob.lease_expires_at)
            .where(
                or_(
                    ComputeJob.status == ComputeJobStatus.PENDING,
                    and_(
                        ComputeJob.status.in_(
                            [ComputeJobStatus.RUNNING, ComputeJobStatus.VALIDATING]
                        ),
                        ComputeJob.lease_expires_at < now,
                    ),
                )
            )
            .order_by(ComputeJob.created_at, ComputeJob.id)
            .limit(10)
        ).all()
    for job_id, status, expires in waiting:
        with transaction(sessions) as session:
            if not take_row_lease(
                session,
                ComputeJob,
                job_id,
                expires,
                ComputeJob.status == status,
                lease_holder=worker,
                lease_expires_at=now + lease,
                attempts=ComputeJob.attempts + 1,
            ):
                continue  # another worker got there first
            job = session.get_one(ComputeJob, job_id)
            session.refresh(job)
            if job.attempts > MAX_ATTEMPTS:
                _finish(
                    job,
                    ComputeJobStatus.ERROR,
                    now,
                    Failure.error.value,
                    f"the job's worker stopped {MAX_ATTEMPTS} times before finishing it",
                )
                continue
            again = "" if status is ComputeJobStatus.PENDING else " again (its worker stopped)"
            _status(job, ComputeJobStatus.RUNNING, f"claimed{again} by {worker}", now)
            return job_id
    return None


def _finish(
    job: ComputeJob, status: ComputeJobStatus, now: datetime, failure: str | None, message: str
) -> None:
    job.failure, job.message, job.finished_at = failure, message, now
    job.lease_holder, job.lease_expires_at = None, None
    _status(job, status, message, now)


@dataclass(frozen=True)
class _Inputs:
    account_id: uuid.UUID
    model_id: uuid.UUID
    round_id: uuid.UUID
    model_key: str
    live_key: str
    runtime: str
    closed_live: bool


class ComputeWorker:
    """Runs compute jobs, one at a time, in the sandbox."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        storage: FileStorage,
        *,
        limits: SandboxLimits | None = None,
        runtime: Runtime | None = None,
        runtimes: Runtimes | None = None,
        name: str | None = None,
        work_dir: Path | None = None,
        validator: Validator = IN_PROCESS,
        cluster: Client | None = None,
    ) -> None:
        self.sessions, self.clock, self.storage = sessions, clock, storage
        self.validator = validator
        """Where predictions are decoded and validated (the server's validation pool)."""
        self.limits = limits or SandboxLimits()
        self.runtime = runtime or default_runtime()
        """The default runtime."""
        self.runtimes = runtimes or Runtimes(None, default=self.runtime)
        """The named runtimes (by default none is built)."""
        self.name = name or f"worker-{uuid.uuid4().hex[:12]}"
        self.work_dir = work_dir
        self.lease = timedelta(seconds=self.limits.wall_seconds) + LEASE_MARGIN
        self.cluster = cluster
        """A Dask cluster's client: jobs run on its workers (None: here, one at a time)."""

    def run_once(self) -> uuid.UUID | None:
        """`run_batch`; the first job run, or None."""
        done = self.run_batch()
        return done[0] if done else None

    def run_batch(self) -> list[uuid.UUID]:
        """Queue the open rounds' missing jobs, then claim and run as many as run at once
        (one here; on a cluster, one per thread of its workers); the jobs run."""
        with transaction(self.sessions) as session:
            queue_open_rounds(session, self.clock.now())
        slots = 1 if self.cluster is None else self._cluster_threads(self.cluster)
        claimed: list[uuid.UUID] = []
        while len(claimed) < slots:
            job_id = claim_job(self.sessions, self.name, self.clock.now(), self.lease)
            if job_id is None:
                break
            claimed.append(job_id)
        if self.cluster is None:
            for job_id in claimed:
                self.run(job_id)
        else:
            self._run_on_cluster(self.cluster, claimed)
        return claimed

    def run_until_idle(self) -> list[uuid.UUID]:
        """`run_batch` until no job is waiting; the jobs run."""
        done = []
        while batch := self.run_batch():
            done.extend(batch)
        return done

    def run_forever(self, stop: threading.Event, poll_seconds: float = 5.0) -> None:
        """Run jobs until `stop` is set, looking for new ones every `poll_seconds`."""
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                logger.exception("a compute job could not be run; trying again")
                ran = None
            if ran is None:
                stop.wait(poll_seconds)

    def run(self, job_id: uuid.UUID) -> ComputeJobStatus:
        """Run the claimed job `job_id` to its end; its final status."""
        try:
            inputs = self._inputs(job_id)
            runtime = self._runtime(inputs.runtime)
            result = self._sandbox(inputs, runtime)
        except (SandboxUnavailable, RuntimeProblem) as exc:
            return self._end(job_id, ComputeJobStatus.ERROR, Failure.error.value, str(exc))
        except Exception as exc:
            return self._platform_error(job_id, exc)
        return self._record(job_id, inputs, runtime, result)

    def _platform_error(self, job_id: uuid.UUID, exc: Exception) -> ComputeJobStatus:
        logger.exception("compute job %s", job_id, exc_info=exc)
        message = f"the platform could not run the job: {type(exc).__name__}: {exc}"
        return self._end(job_id, ComputeJobStatus.ERROR, Failure.error.value, message)

    def _run_on_cluster(self, cluster: Client, job_ids: list[uuid.UUID]) -> None:
        """Run the claimed jobs on the cluster's workers at once; record each as it ends."""
        from distributed import as_completed

        running = {}
        for job_id in job_ids:
            try:
                inputs = self._inputs(job_id)
                model, live = self._read(inputs.model_key), self._read(inputs.live_key)
                future = cluster.submit(
                    run_on_worker,
                    model,
                    live,
                    inputs.runtime,
                    self.limits,
                    None if self.runtimes.built_dir is None else str(self.runtimes.built_dir),
                    key=f"compute-job-{job_id}-{uuid.uuid4().hex[:8]}",
                    pure=False,
                )
            except Exception as exc:
                self._platform_error(job_id, exc)
                continue
            running[future] = (job_id, inputs, live)
        for future in as_completed(list(running)):  # type: ignore[no-untyped-call]
            job_id, inputs, live = running[future]
            try:
                result, runtime = future.result()
                result = self._validated(result, live, closed_live=inputs.closed_live)
            except (SandboxUnavailable, RuntimeProblem) as exc:
                self._end(job_id, ComputeJobStatus.ERROR, Failure.error.value, str(exc))
            except Exception as exc:
                self._platform_error(job_id, exc)
            else:
                self._record(job_id, inputs, runtime, result)

    @staticmethod
    def _cluster_threads(cluster: Client) -> int:
        threads: dict[str, int] = cluster.nthreads()  # type: ignore[no-untyped-call]
        return max(1, sum(threads.values()))

    def _read(self, key: str) -> bytes:
        with self.storage.read(key) as chunks:
            return b"".join(chunks)

    def _validated(self, result: SandboxResult, live: bytes, *, closed_live: bool) -> SandboxResult:
        """`result` once its predictions pass as a submission, else an invalid output;
        sealed in a closed-live tournament, as a run here is."""
        if result.predictions is None:
            return sealed(result) if closed_live else result
        live_ids = LiveIds(pd.read_parquet(io.BytesIO(live), columns=[]).index.astype(str))
        try:
            validated = self.validator.validate(
                result.predictions,
                live_ids,
                filename="predictions.parquet",
                max_bytes=DEFAULT_MAX_BYTES,
            )
        except ValueError as exc:
            result = replace(
                result, failure=Failure.invalid_output, message=str(exc), predictions=None
            )
            return sealed(result) if closed_live else result
        if not closed_live:
            return result
        return sealed(replace(result, predictions=canonical_predictions(validated)))

    def _record(
        self, job_id: uuid.UUID, inputs: _Inputs, runtime: Runtime, result: SandboxResult
    ) -> ComputeJobStatus:
        """The run's end kept: a failure, or its predictions submitted."""
        if not result.ok:
            status = (
                ComputeJobStatus.ERROR
                if result.failure is Failure.error
                else ComputeJobStatus.FAILED
            )
            failure = result.failure.value if result.failure else None
            return self._end(job_id, status, failure, result.describe(), result, runtime)
        if not self._update(
            job_id, lambda job, now: _status(job, ComputeJobStatus.VALIDATING, result.message, now)
        ):
            return ComputeJobStatus.ERROR
        return self._submit(job_id, inputs, result, runtime)

    def _runtime(self, name: str) -> Runtime:
        return self.runtime if name == DEFAULT_RUNTIME else self.runtimes.get(name)

    def _inputs(self, job_id: uuid.UUID) -> _Inputs:
        with transaction(self.sessions) as session:
            job = session.get_one(ComputeJob, job_id)
            model = session.get_one(Model, job.upload.model_id)
            return _Inputs(
                account_id=model.account_id,
                model_id=model.id,
                round_id=job.round_id,
                model_key=job.upload.file_key,
                live_key=live_file_key(job.round_),
                runtime=job.upload.runtime,
                closed_live=is_closed_live(model.tournament),
            )

    def _sandbox(self, inputs: _Inputs, runtime: Runtime) -> SandboxResult:
        with tempfile.TemporaryDirectory(prefix="cq-job-", dir=self.work_dir) as tmp:
            model = Path(tmp) / "model.pkl"
            live = Path(tmp) / "live.parquet"
            for key, path in ((inputs.model_key, model), (inputs.live_key, live)):
                with self.storage.read(key) as chunks, path.open("wb") as file:
                    for chunk in chunks:
                        file.write(chunk)
            live_ids = LiveIds(pd.read_parquet(live, columns=[]).index.astype(str))
            validated: list[ValidatedSubmission] = []

            def validate(data: bytes) -> None:
                validated.append(
                    self.validator.validate(
                        data, live_ids, filename="predictions.parquet", max_bytes=DEFAULT_MAX_BYTES
                    )
                )

            result = run_model(
                model,
                live,
                limits=self.limits,
                runtime=runtime,
                validate_output=validate,
                work_dir=self.work_dir,
            )
        if not inputs.closed_live:
            return result
        if result.ok:
            result = dataclasses.replace(result, predictions=canonical_predictions(validated[-1]))
        return sealed(result)

    def _submit(
        self, job_id: uuid.UUID, inputs: _Inputs, result: SandboxResult, runtime: Runtime
    ) -> ComputeJobStatus:
        assert result.predictions is not None
        try:
            with transaction(self.sessions) as session:
                job = session.get_one(ComputeJob, job_id)
                if job.lease_holder != self.name:
                    return job.status
                account = session.get_one(Account, inputs.account_id)
                round_ = session.get_one(Round, inputs.round_id)
                live_ids = pd.read_parquet(io.BytesIO(result.predictions))["id"]
                submission = submit_predictions(
                    session,
                    self.clock,
                    self.storage,
                    account,
                    inputs.model_id,
                    round_,
                    "predictions.parquet",
                    result.predictions,
                    live_ids=pd.Index(live_ids.astype(str)),
                    validator=self.validator,
                    max_bytes=DEFAULT_MAX_BYTES,
                    by_participant=False,
                )
                now = self.clock.now()
                self._record_run(job, result, runtime)
                if submission.status is SubmissionStatus.VALID:
                    job.submission_id = submission.id
                    _finish(job, ComputeJobStatus.SUCCESS, now, None, result.message)
                else:
                    message = f"invalid output: {submission.error}"
                    _finish(
                        job, ComputeJobStatus.FAILED, now, Failure.invalid_output.value, message
                    )
                return job.status
        except SubmissionRejected as exc:
            return self._end(
                job_id, ComputeJobStatus.FAILED, "round_closed", exc.message, result, runtime
            )

    @staticmethod
    def _record_run(job: ComputeJob, result: SandboxResult, runtime: Runtime) -> None:
        job.log, job.seconds = result.log, result.seconds
        job.runtime, job.runtime_lock_hash = runtime.name, runtime.lock_hash

    def _end(
        self,
        job_id: uuid.UUID,
        status: ComputeJobStatus,
        failure: str | None,
        message: str,
        result: SandboxResult | None = None,
        runtime: Runtime | None = None,
    ) -> ComputeJobStatus:
        def end(job: ComputeJob, now: datetime) -> None:
            if result is not None and runtime is not None:
                self._record_run(job, result, runtime)
            _finish(job, status, now, failure, message)

        return status if self._update(job_id, end) else ComputeJobStatus.ERROR

    def _update(self, job_id: uuid.UUID, change: Any) -> bool:
        """Apply `change(job, now)` if this worker still holds the job's lease."""
        with transaction(self.sessions) as session:
            job = session.get_one(ComputeJob, job_id)
            if job.lease_holder != self.name or job.status in FINISHED:
                return False
            change(job, self.clock.now())
            return True
