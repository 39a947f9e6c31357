"""Model uploads (numerapi's `model_upload`): a cloudpickled ``predict`` run every round.

1. `computePickleUploadAuth(filename, modelId)` answers a fresh upload key of the model and a
   signed PUT URL for it (no tournament argument: a missing `modelId` means the caller's
   only model of tournament 8, numerapi's default).
2. The client PUTs the pickle (`api/files.py`).
3. `createComputePickleUpload(filename: <that key>, tournament, modelId, dataVersionId,
   dockerImageId)` makes it the model's upload (`tournament.model_uploads`) and answers its id.

`computePickleDataVersions` lists the dataset versions and `computePickleDockerImages` the
runtimes (`compute.runtime.runtime_names`: `default` and the named ones shipped), each as
``{name, id}`` with an id derived from the name. A model's
`computePickleUpload` shows its upload and the jobs that ran it (`triggers`, newest first,
each with its status history and the last `LOG_SHOWN` characters of its log, as the site
shows).
"""

from __future__ import annotations

import uuid
from pathlib import PurePosixPath
from typing import Any

from ariadne import MutationType, ObjectType, QueryType
from graphql import GraphQLResolveInfo
from sqlalchemy import select

from crowdquant.api.graphql.context import ApiError, context_of, iso, required
from crowdquant.api.graphql.uploads import model_for, upload_auth, uploader
from crowdquant.compute.runtime import DEFAULT_RUNTIME, runtime_names
from crowdquant.db.models import ApiScope, ComputeJob, Model, Tournament
from crowdquant.tournament.model_uploads import log_end, model_upload_of, upload_model
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.uploads import own_upload, read_upload

query = QueryType()
mutation = MutationType()
model_type = ObjectType("Model")

DEFAULT_TOURNAMENT = 8
HOW = "use computePickleUploadAuth"
NAMES = uuid.UUID("3f0d8a4e-5b1c-4c2e-9a7d-6e1f2b3c4d5e")
"""The namespace of the ids given to data versions and runtimes."""


def name_id(kind: str, name: str) -> dict[str, str]:
    return {"name": name, "id": str(uuid.uuid5(NAMES, f"{kind}:{name}"))}


def _data_versions(info: GraphQLResolveInfo[Any]) -> list[dict[str, str]]:
    session = context_of(info).session
    versions = sorted(set(session.scalars(select(Tournament.dataset_version))))
    return [name_id("data-version", version) for version in versions]


def _runtimes() -> list[dict[str, str]]:
    return [name_id("runtime", name) for name in runtime_names()]


@query.field("computePickleDataVersions")
def resolve_data_versions(_obj: Any, info: GraphQLResolveInfo[Any]) -> list[dict[str, str]]:
    context_of(info).account(ApiScope.READ)
    return _data_versions(info)


@query.field("computePickleDockerImages")
def resolve_docker_images(_obj: Any, info: GraphQLResolveInfo[Any]) -> list[dict[str, Any]]:
    context_of(info).account(ApiScope.READ)
    return [
        {**found, "image": found["name"], "tag": found["name"], "default": found["name"] == name}
        for found in _runtimes()
        for name in (DEFAULT_RUNTIME,)
    ]


@query.field("computePickleUploadAuth")
def resolve_upload_auth(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    modelId: str | None = None,
) -> dict[str, str]:
    context = context_of(info)
    account = context.account(ApiScope.UPLOAD)
    model = (
        get_own_model(context.session, account, modelId)
        if modelId
        else model_for(context, account, DEFAULT_TOURNAMENT, None)
    )
    return upload_auth(context, model, filename)


def _named(found: list[dict[str, str]], given: str | None, what: str) -> str | None:
    if not given:
        return None
    for entry in found:
        if given in (entry["id"], entry["name"]):
            return entry["name"]
    raise ApiError(f"unknown {what} {given!r}: choose one of {[e['name'] for e in found]}")


@mutation.field("createComputePickleUpload")
def resolve_create_upload(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    tournament: int | None = None,
    modelId: str | None = None,
    dataVersionId: str | None = None,
    dockerImageId: str | None = None,
) -> dict[str, str]:
    context, account, model = uploader(info, tournament, modelId)
    data_version = _named(_data_versions(info), dataVersionId, "data version")
    runtime = _named(_runtimes(), dockerImageId, "docker image")
    key = own_upload(model, str(required(filename, "filename")), HOW)
    data = read_upload(context.storage, key, HOW)
    upload = upload_model(
        context.session,
        context.clock,
        context.storage,
        account,
        model.id,
        PurePosixPath(key).name,
        data,
        data_version=data_version,
        runtime=runtime,
    )
    context.storage.delete(key)
    return {"id": str(upload.id)}


@model_type.field("computePickleUpload")
def resolve_model_upload(obj: dict[str, Any], info: GraphQLResolveInfo[Any]) -> Any:
    session = context_of(info).session
    model = session.get(Model, uuid.UUID(str(obj["id"])))
    upload = None if model is None else model_upload_of(session, model)
    if upload is None:
        return None
    jobs = session.scalars(
        select(ComputeJob)
        .where(ComputeJob.upload_id == upload.id)
        .order_by(ComputeJob.created_at.desc())
    ).all()
    first, latest = (jobs[-1], jobs[0]) if jobs else (None, None)
    return {
        "id": str(upload.id),
        "filename": upload.filename,
        "insertedAt": iso(upload.created_at),
        "scan": upload.scan,
        "validationStatus": "pending" if first is None else first.status.value,
        "triggerStatus": None if latest is None else latest.status.value,
        "triggers": [
            {
                "id": str(job.id),
                "status": job.status.value,
                "round": job.round_.number,
                "failure": job.failure,
                "message": job.message,
                "log": log_end(job.log),
                "runtime": job.runtime,
                "runtimeLockHash": job.runtime_lock_hash,
                "statuses": [
                    {
                        "status": entry["status"],
                        "description": entry["description"],
                        "insertedAt": entry["at"],
                    }
                    for entry in job.history
                ],
            }
            for job in jobs
        ],
    }
