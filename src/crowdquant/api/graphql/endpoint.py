"""numerapi's GraphQL endpoint, ``POST /``.

GraphQL answers are always HTTP 200 (protocol §2.4): a malformed body, a refusal by a
service or by the ledger, or an unexpected failure all come back as
``{"errors": [{"message": ...}]}``. Each request runs in one transaction, committed unless a
resolver failed unexpectedly (a refusal changes nothing, and an upload that fails
validation is recorded on purpose). Uploads are the exception: a request made only of
`VALIDATES_FIRST` mutations starts as a reader, and the resolver validates the upload
before it begins the writing transaction (`RequestContext.begin_writing`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from fastapi import Request
from fastapi.responses import JSONResponse
from graphql import FieldNode, GraphQLError, OperationDefinitionNode, OperationType
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from crowdquant.api.graphql import execute
from crowdquant.api.graphql.context import RequestContext
from crowdquant.api.graphql.limits import GraphQLLimits, parsed
from crowdquant.db.session import (
    BUSY_RETRIES,
    is_busy,
    one_writer_at_a_time,
    retry_pause,
    take_write_lock,
)
from crowdquant.http.json_depth import nested_deeper_than
from crowdquant.http.services import Services, ServicesDep, base_url, client_address
from crowdquant.http.transaction_route import give_back_write_turn, offer_write_turn


def _errors(message: str) -> JSONResponse:
    return JSONResponse({"errors": [{"message": message}]})


def _limits(services: Services) -> GraphQLLimits:
    settings = services.settings
    return GraphQLLimits(
        max_tokens=settings.graphql_max_tokens,
        max_depth=settings.graphql_max_depth,
        max_cost=settings.graphql_max_cost,
    )


VALIDATES_FIRST: Final = frozenset({"create_submission", "setSubmissionWebhook"})
"""Mutations that validate an upload (or look a webhook's host up) before they write: they
begin writing themselves (`RequestContext.begin_writing`), so a request of these alone
starts as a reader."""


def _mutates(data: dict[str, Any], max_tokens: int) -> bool:
    """Whether the request's document holds a mutation that writes from its start, i.e.
    one not made only of `VALIDATES_FIRST` fields (an unreadable document, or one over the
    token limit, is left to the executor to refuse, as a reader)."""
    query = data.get("query")
    if not isinstance(query, str):
        return False
    try:
        document = parsed(query, max_tokens)
    except GraphQLError:
        return False
    return any(
        isinstance(definition, OperationDefinitionNode)
        and definition.operation is OperationType.MUTATION
        and not all(
            isinstance(selection, FieldNode) and selection.name.value in VALIDATES_FIRST
            for selection in definition.selection_set.selections
        )
        for definition in document.definitions
    )


def _run(services: Services, data: Any, request: Request, writes: bool) -> dict[str, Any]:
    """One GraphQL request in one transaction, a writer from the start if it `writes`; run
    again in a new one after a jittered pause, a few times, while the database asks for it
    (`db.session.is_busy`)."""
    for attempt in range(1, BUSY_RETRIES + 1):
        last_try = attempt == BUSY_RETRIES
        if attempt > 1:
            time.sleep(retry_pause(attempt - 1))
        with services.sessions() as session, _turn_given_back(session):
            if not writes and one_writer_at_a_time(services.sessions):
                offer_write_turn(session, services.writers)
            if writes:
                try:
                    take_write_lock(session)
                except Exception as error:
                    if not is_busy(error) or last_try:
                        raise
                    continue
            context = RequestContext(
                session=session,
                clock=services.clock,
                storage=services.storage,
                signer=services.signer,
                base_url=base_url(request),
                authorization=request.headers.get("authorization"),
                max_upload_bytes=services.max_upload_bytes,
                ledger=services.ledger,
                throttle=services.throttle,
                address=client_address(request),
                validator=services.validator,
                live_ids=services.live_ids,
                webhook_targets=services.webhook_targets,
                writing=writes,
            )
            outcome = execute(data, context, _limits(services), last_try=last_try)
            if outcome.unexpected:
                session.rollback()
                if outcome.busy and not last_try:
                    continue
                return outcome.body
            try:
                session.commit()
            except Exception as error:
                if not is_busy(error) or last_try:
                    raise
                continue
            return outcome.body
    raise AssertionError("unreachable: the last attempt returns")


@contextmanager
def _turn_given_back(session: Session) -> Iterator[None]:
    """Give back the writers' turn an upload took in `session` (`begin_writing`)."""
    try:
        yield
    finally:
        give_back_write_turn(session)


async def graphql_endpoint(request: Request, services: ServicesDep) -> JSONResponse:
    raw = await request.body()
    if nested_deeper_than(raw):
        return _errors("the request body is JSON nested too deeply")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return _errors("the request body is not JSON")
    except RecursionError:
        return _errors("the request body is JSON nested too deeply")
    if not isinstance(data, dict):
        return _errors('expected a JSON object {"query": ..., "variables": ...}')
    writes = _mutates(data, services.settings.graphql_max_tokens)
    async with services.write_turn(writes):
        body = await run_in_threadpool(_run, services, data, request, writes)
    return JSONResponse(body)
