"""Submission webhooks (numerapi's `set_submission_webhook`, numerai-cli's trigger).

`setSubmissionWebhook(modelId, newSubmissionWebhook)` registers the URL (null or empty
removes it) and answers the string ``"true"``, which numerapi compares with; the URL is
checked as `tournament.webhooks` says, its host looked up before the request begins writing
(it is one of the endpoint's `VALIDATES_FIRST` mutations). `triggerModelWebhook(modelId)`
queues a delivery at once and answers its trigger id; the webhook worker sends it.
"""

from __future__ import annotations

from typing import Any

from ariadne import MutationType
from graphql import GraphQLResolveInfo

from crowdquant.api.graphql.context import context_of, required
from crowdquant.db.models import ApiScope
from crowdquant.tournament.webhooks import set_webhook, trigger_by_hand

mutation = MutationType()


@mutation.field("setSubmissionWebhook")
def resolve_set_webhook(
    _obj: Any,
    info: GraphQLResolveInfo[Any],
    modelId: str | None = None,
    newSubmissionWebhook: str | None = None,
) -> str:
    context = context_of(info)
    account = context.account(ApiScope.UPLOAD)
    targets = context.webhook_targets.resolved_first(newSubmissionWebhook)
    context.begin_writing()
    set_webhook(
        context.session,
        context.clock,
        targets,
        account,
        str(required(modelId, "modelId")),
        newSubmissionWebhook,
    )
    return "true"


@mutation.field("triggerModelWebhook")
def resolve_trigger_webhook(
    _obj: Any, info: GraphQLResolveInfo[Any], modelId: str | None = None
) -> str:
    context = context_of(info)
    account = context.account(ApiScope.UPLOAD)
    delivery = trigger_by_hand(
        context.session, context.clock, account, str(required(modelId, "modelId"))
    )
    return delivery.trigger_id
