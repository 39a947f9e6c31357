"""What the two upload flows (submissions, diagnostics) share: whose model, and the signed PUT.

Step 1 of both answers a fresh key under the model's upload folder with a signed PUT URL
for exactly that key (`tournament.uploads`); step 2 names the key back.
"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import ApiError, RequestContext, context_of, required
from crowdquant.db.models import Account, ApiScope, Model
from crowdquant.http.signing import UPLOAD_TTL
from crowdquant.tournament.models import get_own_model, list_models
from crowdquant.tournament.submissions import WrongTournament
from crowdquant.tournament.uploads import new_upload_key


def model_for(
    context: RequestContext, account: Account, tournament: int, model_id: str | None
) -> Model:
    """The model named by `model_id`, or the account's only model of `tournament`.

    numerapi sends ``""`` as well as null for "not given"."""
    if not model_id:
        models = list_models(context.session, account, tournament)
        if len(models) != 1:
            have = "no model" if not models else "several models"
            raise ApiError(f"you have {have} in tournament {tournament}: pass model_id")
        return models[0]
    model = get_own_model(context.session, account, model_id)
    if model.tournament.number != tournament:
        raise WrongTournament(f"model {model.name!r} is not in tournament {tournament}")
    return model


def uploader(
    info: GraphQLResolveInfo[Any], tournament: int | None, model_id: str | None
) -> tuple[RequestContext, Account, Model]:
    """The request, the caller (with scope `upload`) and the model they upload for."""
    context = context_of(info)
    account = context.account(ApiScope.UPLOAD)
    model = model_for(context, account, required(tournament, "tournament"), model_id)
    return context, account, model


def upload_auth(context: RequestContext, model: Model, filename: str | None) -> dict[str, str]:
    """Step 1: a fresh upload key for `model` and a signed PUT URL for it."""
    key = new_upload_key(model, filename)
    url = context.signed_url("PUT", key, UPLOAD_TTL, max_bytes=context.max_upload_bytes)
    return {"filename": key, "url": url}


def resolve_upload_auth(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    filename: str | None = None,
    tournament: int | None = None,
    modelId: str | None = None,
) -> dict[str, str]:
    """`submission_upload_auth` and `diagnosticsUploadAuth` alike: step 1 of an upload."""
    context, _, model = uploader(info, tournament, modelId)
    return upload_auth(context, model, filename)
