"""Diagnostics of the caller's models: upload validation predictions (scope `upload`), then
read the report when the worker has run it (scope `read`). The upload goes through the same
service as numerapi's `upload_diagnostics`: it is queued, never scored in the request."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends

from crowdquant.api.rest.auth import ReadAccount, UploadAccount
from crowdquant.api.rest.deps import SessionDep
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.limits import rate_limited
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.diagnostics import DiagnosticsOut
from crowdquant.api.rest.submissions import upload_model
from crowdquant.api.rest.uploads import REQUEST_BODY, UploadDep
from crowdquant.db.models import Model
from crowdquant.http.services import ServicesDep
from crowdquant.http.throttle import Action
from crowdquant.tournament.diagnostics import get_diagnostics, list_diagnostics, request_diagnostics
from crowdquant.tournament.uploads import new_upload_key

router = APIRouter(tags=["diagnostics"], route_class=RestRoute)


@router.post(
    "/models/{model_id}/diagnostics",
    status_code=202,
    responses=responses(401, 403, 404, 413, 415, 429, 503),
    openapi_extra={"requestBody": REQUEST_BODY},
    dependencies=[Depends(rate_limited(Action.DIAGNOSTICS))],
)
def post_diagnostics(
    model: Annotated[Model, Depends(upload_model)],
    upload: UploadDep,
    account: UploadAccount,
    session: SessionDep,
    services: ServicesDep,
) -> DiagnosticsOut:
    """Queue validation predictions for diagnostics; the answer says `pending`."""
    key = new_upload_key(model, upload.filename)
    services.storage.write(key, upload.content, max_bytes=services.max_upload_bytes)
    try:
        row = request_diagnostics(
            session,
            services.clock,
            services.storage,
            account,
            model.id,
            key,
            max_bytes=services.max_upload_bytes,
        )
    except BaseException:
        services.storage.delete(key)
        raise
    return DiagnosticsOut.model_validate(row)


@router.get("/models/{model_id}/diagnostics", responses=responses(401, 403, 404))
def get_all_diagnostics(
    model_id: uuid.UUID, account: ReadAccount, session: SessionDep
) -> list[DiagnosticsOut]:
    """The model's diagnostics requests, newest first, with their reports."""
    return [
        DiagnosticsOut.model_validate(row) for row in list_diagnostics(session, account, model_id)
    ]


@router.get("/models/{model_id}/diagnostics/{diagnostics_id}", responses=responses(401, 403, 404))
def get_one_diagnostics(
    model_id: uuid.UUID, diagnostics_id: uuid.UUID, account: ReadAccount, session: SessionDep
) -> DiagnosticsOut:
    return DiagnosticsOut.model_validate(
        get_diagnostics(session, account, model_id, diagnostics_id)
    )
