"""Uploading predictions to a model's current round, and reading one's submissions back.

An upload goes through `upload_target`, `check_upload` and `record_upload`, the services
behind GraphQL's `create_submission`, so the checks, the late marking, the size limit and
the refusals are the same. The file is validated in the server's validation pool before
the request takes the write lock (`validates_first`), then recorded and committed in its
turn among writers. A file that fails validation is not refused: it is recorded as an
`invalid` submission (answered 201 with its `error`), as GraphQL records it, so the
participant sees it in the list. Every 4xx answer leaves the database and storage as they
were. An upload made from a webhook's call names its `trigger_id`, as GraphQL's does: it is
linked to that delivery, and one the model was not sent (or sent for another round) is refused.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from crowdquant.api.rest.auth import ReadAccount, UploadAccount
from crowdquant.api.rest.deps import SessionDep
from crowdquant.api.rest.errors import responses
from crowdquant.api.rest.limits import rate_limited
from crowdquant.api.rest.routing import RestRoute
from crowdquant.api.rest.schemas.base import Overlay
from crowdquant.api.rest.schemas.submissions import SubmissionDownloadOut, SubmissionOut
from crowdquant.api.rest.uploads import REQUEST_BODY, UploadDep, UploadedFile
from crowdquant.db.models import Account, Model, Submission, SubmissionStatus
from crowdquant.http.links import LinksDep
from crowdquant.http.services import Services, ServicesDep
from crowdquant.http.throttle import Action
from crowdquant.http.transaction_route import begin_writing, validates_first
from crowdquant.tournament.models import get_own_model
from crowdquant.tournament.rounds import current_round
from crowdquant.tournament.rules2017_checks import visible_checks
from crowdquant.tournament.submissions import (
    CheckedUpload,
    RoundNotOpen,
    check_upload,
    counting_submission,
    downloadable_submission,
    get_own_submission,
    list_submissions,
    record_upload,
    round_live_ids,
    upload_target,
)
from crowdquant.tournament.visibility import Role, Viewer
from crowdquant.tournament.webhooks import delivery_for_trigger, link_trigger

router = APIRouter(tags=["submissions"], route_class=RestRoute)


def _render(session: Session, submissions: list[Submission]) -> list[SubmissionOut]:
    """With `selected`: whether each is the one counting for its model in its round, and
    the figures of a 2017 upload a participant may see."""
    counting: dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID | None] = {}
    checks = visible_checks(session, submissions, Viewer(Role.PARTICIPANT))
    rendered = []
    for submission in submissions:
        selected = False
        if submission.status is SubmissionStatus.VALID and not submission.late:
            pair = (submission.round_id, submission.model_id)
            if pair not in counting:
                found = counting_submission(session, submission.round, submission.model)
                counting[pair] = None if found is None else found.id
            selected = counting[pair] == submission.id
        rendered.append(
            SubmissionOut.model_validate(
                Overlay(submission, selected=selected, checks=checks[submission.id])
            )
        )
    return rendered


def upload_model(model_id: uuid.UUID, account: UploadAccount, session: SessionDep) -> Model:
    """The caller's model to upload to: checked before the body is read."""
    return get_own_model(session, account, model_id)


@router.post(
    "/models/{model_id}/submissions",
    status_code=201,
    responses=responses(401, 403, 404, 409, 413, 415, 429),
    openapi_extra={"requestBody": REQUEST_BODY},
    dependencies=[Depends(rate_limited(Action.UPLOAD))],
)
@validates_first
async def post_submission(
    model: Annotated[Model, Depends(upload_model)],
    upload: UploadDep,
    account: UploadAccount,
    session: SessionDep,
    services: ServicesDep,
    trigger_id: Annotated[
        str | None,
        Query(
            description="the trigger id the model's webhook received, if it made this upload",
            max_length=64,
            pattern=r"^[^\x00-\x1f\x7f]+$",
        ),
    ] = None,
) -> SubmissionOut:
    """Upload predictions to the current round of the model's tournament (scope `upload`).

    The file is validated as a reader, holding no lock and no connection; the row is
    recorded and committed in its turn among the process's writers (waited for here, on the
    event loop, so that waiting uploads hold no worker thread)."""
    checked, trigger = await run_in_threadpool(
        _checked, model, upload, account, session, services, trigger_id
    )
    async with services.write_turn(True):
        submission = await run_in_threadpool(
            _recorded, checked, trigger, account, session, services
        )
    return await run_in_threadpool(lambda: _render(session, [submission])[0])


def _checked(
    model: Model,
    upload: UploadedFile,
    account: Account,
    session: Session,
    services: Services,
    trigger_id: str | None,
) -> tuple[CheckedUpload, uuid.UUID | None]:
    """The file checked, and the webhook delivery `trigger_id` names (None: none)."""
    round_ = current_round(session, model.tournament)
    if round_ is None:
        raise RoundNotOpen(f"tournament {model.tournament.number} has no round yet")
    trigger = delivery_for_trigger(session, model, round_, trigger_id)
    storage = services.storage
    target = upload_target(session, services.clock, storage, account, model.id, round_)
    live_ids = round_live_ids(storage, round_, services.live_ids)
    session.commit()  # the reads above end here: validating holds no lock, no connection
    checked = check_upload(
        storage,
        target,
        upload.filename,
        upload.content,
        live_ids=live_ids,
        validator=services.validator,
        max_bytes=services.max_upload_bytes,
    )
    return checked, trigger


def _recorded(
    checked: CheckedUpload,
    trigger: uuid.UUID | None,
    account: Account,
    session: Session,
    services: Services,
) -> Submission:
    begin_writing(session)
    submission = record_upload(session, services.clock, services.storage, account, checked)
    if trigger is not None:
        link_trigger(session, trigger, submission)
    session.commit()
    return submission


@router.get("/models/{model_id}/submissions", responses=responses(401, 403, 404))
def get_submissions(
    model_id: uuid.UUID, account: ReadAccount, session: SessionDep
) -> list[SubmissionOut]:
    """The model's submissions, newest first (scope `read`)."""
    return _render(session, list_submissions(session, account, model_id))


@router.get("/submissions/{submission_id}", responses=responses(401, 403, 404))
def get_submission(
    submission_id: uuid.UUID, account: ReadAccount, session: SessionDep
) -> SubmissionOut:
    return _render(session, [get_own_submission(session, account, submission_id)])[0]


@router.get("/submissions/{submission_id}/download", responses=responses(401, 403, 404, 410))
def get_submission_download(
    submission_id: uuid.UUID, account: ReadAccount, session: SessionDep, links: LinksDep
) -> SubmissionDownloadOut:
    """A signed URL to download the file as it was uploaded (scope `read`); 410 once
    retention purged it."""
    submission = downloadable_submission(session, account, submission_id)
    link = links.download(submission.file_key)
    return SubmissionDownloadOut(
        submission_id=submission.id,
        filename=submission.filename,
        url=link.url,
        expires_at=link.expires_at,
    )
