"""Participants' uploaded models: a cloudpickled ``predict`` kept for one of their models and
run on every round's live features (`compute_jobs`).

An upload is stored under a key of its own and scanned (fickling, advice only: every pickle
is run as hostile code, in the sandbox); it becomes the model's upload at once, and the
model's earlier uploads are disabled. Its owner may disable it, make an earlier one the
model's again, read its pickle back and queue a run on the open round by hand.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import PurePosixPath

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.compute.runtime import DEFAULT_RUNTIME, runtime_names
from crowdquant.compute.sandbox import scan_pickle
from crowdquant.db.models import (
    Account,
    ComputeJob,
    ComputeJobStatus,
    Model,
    ModelUpload,
    Round,
)
from crowdquant.storage import FileStorage
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.rounds import current_round, is_open

MODEL_UPLOADS_PREFIX = "model-uploads"
FINISHED = (ComputeJobStatus.SUCCESS, ComputeJobStatus.FAILED, ComputeJobStatus.ERROR)
MAX_MODEL_BYTES = 512 << 20
"""The largest pickle taken."""
LOG_SHOWN = 16 * 1024
"""The end of a run's log shown to its owner (the site's page, GraphQL's trigger `log`), in
characters."""


def log_end(log: str | None) -> str | None:
    """The last `LOG_SHOWN` characters of a run's log."""
    return None if log is None else log[-LOG_SHOWN:]


class ModelUploadRejected(ServiceError):  # noqa: N818
    code = "model_upload_rejected"
    default_message = "the model upload was refused"


class UnknownModelUpload(ServiceError, LookupError):  # noqa: N818
    code = "unknown_model_upload"
    default_message = "the model has no upload with that id"


class RunRefused(ServiceError):  # noqa: N818
    code = "run_refused"
    default_message = "the model's upload cannot be run now"


def upload_model(
    session: Session,
    clock: Clock,
    storage: FileStorage,
    account: Account,
    model_id: uuid.UUID | str,
    filename: str,
    data: bytes,
    *,
    data_version: str | None = None,
    runtime: str | None = None,
) -> ModelUpload:
    """Store `data` as `account`'s model `model_id`'s upload and make it the one its rounds
    run. Raises `UnknownModel` / `NotYourModel` and `ModelUploadRejected` (empty, too large,
    an unknown runtime) before anything is stored."""
    model = get_own_model(session, account, model_id)
    runtime = runtime or DEFAULT_RUNTIME
    if runtime not in (names := runtime_names()):
        raise ModelUploadRejected(f"unknown runtime {runtime!r}: choose one of {names}")
    if not data:
        raise ModelUploadRejected("the uploaded model is empty")
    if len(data) > MAX_MODEL_BYTES:
        raise ModelUploadRejected(
            f"the uploaded model is {len(data):,} bytes, over the limit of {MAX_MODEL_BYTES:,}"
        )
    upload_id = uuid.uuid4()
    key = f"{MODEL_UPLOADS_PREFIX}/{model.id.hex}/{upload_id.hex}.pkl"
    storage.write(key, data, max_bytes=MAX_MODEL_BYTES)
    session.execute(
        update(ModelUpload)
        .where(ModelUpload.model_id == model.id, ModelUpload.enabled.is_(True))
        .values(enabled=False)
    )
    upload = ModelUpload(
        id=upload_id,
        model_id=model.id,
        filename=(PurePosixPath(filename.replace("\\", "/")).name or "model.pkl")[:255],
        file_key=key,
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data_version=data_version,
        runtime=runtime,
        scan=scan_pickle(data),
        enabled=True,
        created_at=clock.now(),
    )
    session.add(upload)
    session.flush()
    return upload


def model_upload_of(session: Session, model: Model) -> ModelUpload | None:
    """The upload `model`'s rounds run: its newest enabled one."""
    return session.scalars(
        select(ModelUpload)
        .where(ModelUpload.model_id == model.id, ModelUpload.enabled.is_(True))
        .order_by(ModelUpload.created_at.desc())
        .limit(1)
    ).first()


def model_uploads(session: Session, model: Model) -> list[ModelUpload]:
    """`model`'s uploads, newest first."""
    return list(
        session.scalars(
            select(ModelUpload)
            .where(ModelUpload.model_id == model.id)
            .order_by(ModelUpload.created_at.desc(), ModelUpload.id)
        )
    )


def upload_jobs(session: Session, uploads: list[ModelUpload]) -> dict[uuid.UUID, list[ComputeJob]]:
    """Each upload's jobs, newest first."""
    jobs: dict[uuid.UUID, list[ComputeJob]] = {upload.id: [] for upload in uploads}
    for job in session.scalars(
        select(ComputeJob)
        .where(ComputeJob.upload_id.in_(list(jobs)))
        .order_by(ComputeJob.created_at.desc(), ComputeJob.id)
    ):
        jobs[job.upload_id].append(job)
    return jobs


def own_model_upload(
    session: Session, account: Account, model_id: uuid.UUID | str, upload_id: uuid.UUID | str
) -> ModelUpload:
    """`account`'s model `model_id`'s upload `upload_id`; raises `UnknownModel` /
    `NotYourModel` / `UnknownModelUpload`."""
    model = get_own_model(session, account, model_id)
    try:
        wanted = upload_id if isinstance(upload_id, uuid.UUID) else uuid.UUID(upload_id)
    except ValueError:
        raise UnknownModelUpload() from None
    upload = session.get(ModelUpload, wanted)
    if upload is None or upload.model_id != model.id:
        raise UnknownModelUpload()
    return upload


def set_upload_enabled(session: Session, upload: ModelUpload, enabled: bool) -> None:
    """Disable `upload`, or make it its model's upload again (its others disabled)."""
    if enabled:
        session.execute(
            update(ModelUpload)
            .where(ModelUpload.model_id == upload.model_id, ModelUpload.id != upload.id)
            .values(enabled=False)
        )
    upload.enabled = enabled
    session.flush()


def run_by_hand(session: Session, clock: Clock, account: Account, model: Model) -> ComputeJob:
    """Queue a run of `model`'s upload on its tournament's open round, as a round opening
    does; a finished run on that round is queued again. Raises `RunRefused` without an
    upload, an open round, or with a run still waiting or running."""
    upload = model_upload_of(session, model)
    if upload is None:
        raise RunRefused("the model has no enabled upload to run")
    round_ = current_round(session, model.tournament)
    if round_ is None or not is_open(round_, clock.now()):
        raise RunRefused(f"tournament {model.tournament.number} has no open round")
    return _queue_by_hand(session, clock, account, upload, round_)


def _queue_by_hand(
    session: Session, clock: Clock, account: Account, upload: ModelUpload, round_: Round
) -> ComputeJob:
    now = clock.now()
    description = f"run by hand by {account.username} on round {round_.number}"
    job = session.scalars(
        select(ComputeJob).where(
            ComputeJob.upload_id == upload.id, ComputeJob.round_id == round_.id
        )
    ).first()
    if job is None:
        job = ComputeJob(
            upload_id=upload.id, round_id=round_.id, history=[], attempts=0, created_at=now
        )
        session.add(job)
    elif job.status not in FINISHED:
        raise RunRefused(f"the run on round {round_.number} is {job.status.value} already")
    job.status, job.attempts = ComputeJobStatus.PENDING, 0
    job.failure = job.message = None
    job.finished_at = job.lease_holder = job.lease_expires_at = None
    job.history = [
        *(job.history or []),
        {
            "status": ComputeJobStatus.PENDING.value,
            "description": description,
            "at": now.isoformat(),
        },
    ]
    session.flush()
    return job
