"""The three-step upload (protocol §5.4) and listing one's submissions.

1. `submission_upload_auth` picks a fresh storage key ``uploads/<model>/<nonce>/<name>``
   and answers it as `filename`, with a signed PUT URL for exactly that key (and the size
   limit) as `url`.
2. The client PUTs the raw bytes; `api/files.py` streams them into storage at that key.
3. `create_submission(filename: <that key>)` reads the upload back, finds the model and
   round (`upload_target`), ends its reading transaction and hands the bytes to
   `check_upload` (which validates them against the round's live ids in the server's
   validation pool and stores them under ``submissions/``); then it begins writing,
   `record_upload` adds the row, and the raw upload is deleted. An upload that fails
   validation is recorded as an invalid submission, as the service does, and the mutation
   answers a GraphQL error carrying the validator's message, so numerapi raises it.

`submissionDownloadAuth(id)` answers a signed GET URL for one of the caller's stored
submissions, with its uploaded filename (numerapi's `download_submission`).

Only the model's own key prefix is accepted in step 3, so one cannot submit another
model's upload (`tournament/uploads.py`, shared with diagnostics). Raw uploads never
followed by step 3 are swept by the scheduler a day later. Steps 1 and 3 refuse a model
whose predictions only its uploaded model's runs send (`submissions.own_submission_refusal`).
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from ariadne import MutationType, QueryType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.accounts import render_submission
from crowdquant.api.graphql.context import (
    ApiError,
    context_of,
    required,
)
from crowdquant.api.graphql.uploads import upload_auth, uploader
from crowdquant.db.models import ApiScope, SubmissionStatus
from crowdquant.http.signing import DOWNLOAD_TTL
from crowdquant.http.throttle import Action
from crowdquant.tournament.rounds import current_round
from crowdquant.tournament.submissions import (
    RoundNotOpen,
    check_own_submission,
    check_upload,
    downloadable_submission,
    list_submissions,
    record_upload,
    round_live_ids,
    upload_target,
)
from crowdquant.tournament.uploads import own_upload, read_upload
from crowdquant.tournament.webhooks import delivery_for_trigger, link_trigger, trigger_ids

query = QueryType()
mutation = MutationType()


class SubmissionInvalid(ApiError):  # noqa: N818
    code = "invalid_submission"


@query.field("submission_upload_auth")
def resolve_submission_upload_auth(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    tournament: int | None = None,
    modelId: str | None = None,
) -> dict[str, str]:
    """Step 1, refused at once for a model whose predictions only its runs send."""
    context, _, model = uploader(info, tournament, modelId)
    check_own_submission(context.session, model)
    return upload_auth(context, model, filename)


@mutation.field("create_submission")
def resolve_create_submission(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    tournament: int | None = None,
    modelId: str | None = None,
    triggerId: str | None = None,
    **_ignored: Any,  # source, dataDatestamp
) -> dict[str, Any]:
    context, account, model = uploader(info, tournament, modelId)
    context.throttle.hit(Action.UPLOAD, context.address, account.id)
    session, storage, number = context.session, context.storage, model.tournament.number
    key = own_upload(model, str(required(filename, "filename")), "use submission_upload_auth")
    check_own_submission(session, model)
    round_ = current_round(session, model.tournament)
    if round_ is None:
        raise RoundNotOpen(f"tournament {number} has no round yet")
    trigger = delivery_for_trigger(session, model, round_, triggerId)
    data = read_upload(storage, key, "PUT the file to the URL of submission_upload_auth")
    target = upload_target(
        session, context.clock, storage, account, model.id, round_, own_submission_checked=True
    )
    live_ids = round_live_ids(storage, round_, context.live_ids)
    context.settle()
    checked = check_upload(
        storage,
        target,
        PurePosixPath(key).name,
        data,
        live_ids=live_ids,
        validator=context.validator,
        max_bytes=context.max_upload_bytes,
    )
    context.begin_writing()
    submission = record_upload(session, context.clock, storage, account, checked)
    if trigger is not None:
        link_trigger(session, trigger, submission)
    storage.delete(key)
    if submission.status is SubmissionStatus.INVALID:
        raise SubmissionInvalid(f"{submission.error} (recorded as submission {submission.id})")
    return render_submission(session, submission, {} if trigger is None else None)


@query.field("submissions")
def resolve_submissions(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    modelId: str | None = None,
) -> list[dict[str, Any]]:
    context = context_of(info)
    account = context.account(ApiScope.READ)
    found = list_submissions(context.session, account, modelId)
    triggers = trigger_ids(context.session, found)
    return [render_submission(context.session, submission, triggers) for submission in found]


@query.field("submissionDownloadAuth")
def resolve_submission_download_auth(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    id: str | None = None,
) -> dict[str, str]:
    context = context_of(info)
    account = context.account(ApiScope.READ)
    submission = downloadable_submission(context.session, account, str(required(id, "id")))
    url = context.signed_url("GET", submission.file_key, DOWNLOAD_TTL)
    return {"filename": submission.filename, "url": url}
