"""Participants' uploaded models: a cloudpickled ``predict`` kept for one of their models and
run on every round's live features (`compute_jobs`).

An upload is stored under a key of its own and scanned (fickling, advice only: every pickle
is run as hostile code, in the sandbox); it becomes the model's upload at once, and the
model's earlier uploads are disabled.
"""

from __future__ import annotations

import hashlib
import uuid
from pathlib import PurePosixPath

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from crowdquant.clock import Clock
from crowdquant.compute.runtime import DEFAULT_RUNTIME
from crowdquant.compute.sandbox import scan_pickle
from crowdquant.db.models import Account, Model, ModelUpload
from crowdquant.storage import FileStorage
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.models import get_own_model

MODEL_UPLOADS_PREFIX = "model-uploads"
MAX_MODEL_BYTES = 512 << 20
"""The largest pickle taken."""
RUNTIMES = (DEFAULT_RUNTIME,)
"""The runtimes an upload may ask for (named runtimes come later)."""


class ModelUploadRejected(ServiceError):  # noqa: N818
    code = "model_upload_rejected"
    default_message = "the model upload was refused"


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
    if runtime not in RUNTIMES:
        raise ModelUploadRejected(f"unknown runtime {runtime!r}: choose one of {list(RUNTIMES)}")
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
