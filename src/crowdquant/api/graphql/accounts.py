"""`account` and `model`: the caller's own account, keys and models (API key scope `read`);
`accountProfile`: anyone's models by username (public); `setUserBio` and `setUserLink`: a
model's public bio and link (scope `upload`).

The account's `availableNmr` and `walletTxns` come from the ledger (`stakes.py`); `v2Stake`
(numerai's on-chain stake record) is null: stakes are changed with `v2ChangeStake`.
"""

from __future__ import annotations

import uuid
from typing import Any

from ariadne import MutationType, QueryType
from graphql import GraphQLResolveInfo
from sqlalchemy.orm import Session

from crowdquant.api.graphql.context import context_of, iso, required
from crowdquant.api.graphql.rounds import render_round
from crowdquant.db.models import ApiScope, Model, Submission, SubmissionStatus
from crowdquant.tournament.accounts import get_account, list_api_keys
from crowdquant.tournament.models import get_own_model, list_models, set_model_bio, set_model_link
from crowdquant.tournament.submissions import counting_submission
from crowdquant.tournament.webhooks import trigger_ids

query = QueryType()
mutation = MutationType()


def render_submission(
    session: Session, submission: Submission, triggers: dict[uuid.UUID, str] | None = None
) -> dict[str, Any]:
    """numerapi's `Submission`; `triggers`: the trigger ids of the submissions being listed
    (`trigger_ids`), else looked up for this one. The fields that read more than the row
    (`selected`, `round`, `triggerId`) are callables, which the executor calls only when the
    request asks for the field (an upload asks for the `id` alone)."""

    def selected(*_: Any, **__: Any) -> bool:
        return (
            submission.status is SubmissionStatus.VALID
            and not submission.late
            and counting_submission(session, submission.round, submission.model) is submission
        )

    def round_(*_: Any, **__: Any) -> dict[str, Any]:
        return render_round(submission.round)

    def trigger_id(*_: Any, **__: Any) -> str | None:
        found = trigger_ids(session, [submission]) if triggers is None else triggers
        return found.get(submission.id)

    return {
        "id": str(submission.id),
        "filename": submission.filename,
        "insertedAt": iso(submission.created_at),
        "selected": selected,
        "round": round_,
        "triggerId": trigger_id,
        "firstEffectiveDate": None,
    }


def render_model(session: Session, model: Model) -> dict[str, Any]:
    """numerapi's `Model`; its `submissions` (every one, newest first) are a callable, read
    only when the request asks for them (`get_models` asks for id, name and tournament)."""

    def submissions(*_: Any, **__: Any) -> list[dict[str, Any]]:
        newest_first = sorted(model.submissions, key=lambda sub: sub.created_at, reverse=True)
        triggers = trigger_ids(session, newest_first)
        return [render_submission(session, sub, triggers) for sub in newest_first]

    return {
        "id": str(model.id),
        "name": model.name,
        "tournament": model.tournament.number,
        "submissions": submissions,
        "v2Stake": None,
    }


@query.field("account")
def resolve_account(_obj: Any, info: GraphQLResolveInfo[Any]) -> dict[str, Any]:
    context = context_of(info)
    account = context.account(ApiScope.READ)
    session = context.session
    return {
        "id": str(account.id),
        "username": account.username,
        "email": account.email,
        "walletAddress": account.wallet_address,
        "mfaEnabled": False,
        "status": "VERIFIED",
        "insertedAt": iso(account.created_at),
        "models": [render_model(session, model) for model in list_models(session, account)],
        "apiTokens": [
            {"name": key.name, "public_id": key.public_id, "scopes": sorted(key.scopes)}
            for key in list_api_keys(session, account)
            if key.revoked_at is None
        ],
    }


@query.field("model")
def resolve_model(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    modelId: str | None = None,
) -> dict[str, Any]:
    context = context_of(info)
    account = context.account(ApiScope.READ)
    model = get_own_model(context.session, account, required(modelId, "modelId"))
    return render_model(context.session, model)


@query.field("accountProfile")
def resolve_account_profile(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    username: str | None = None,
    tournament: int | None = None,
) -> dict[str, Any]:
    """An account's models in `tournament` (every tournament without it): public, as on
    the leaderboards."""
    session = context_of(info).session
    account = get_account(session, str(required(username, "username")))
    models = list_models(session, account, tournament)
    return {"models": [{"id": str(model.id), "displayName": model.name} for model in models]}


@mutation.field("setUserBio")
def resolve_set_bio(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    value: str | None = None,
    modelId: str | None = None,
) -> bool:
    context = context_of(info)
    account = context.account(ApiScope.UPLOAD)
    set_model_bio(context.session, account, required(modelId, "modelId"), value)
    return True


@mutation.field("setUserLink")
def resolve_set_link(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    linkText: str | None = None,
    linkUrl: str | None = None,
    modelId: str | None = None,
) -> bool:
    context = context_of(info)
    account = context.account(ApiScope.UPLOAD)
    set_model_link(context.session, account, required(modelId, "modelId"), linkText, linkUrl)
    return True
