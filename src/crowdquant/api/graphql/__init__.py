"""The numerapi-compatible GraphQL API: schema-first (Ariadne), resolvers per domain.

`execute` runs one request in the caller's session and reports whether it failed in an
unexpected way (then the caller rolls back). Refusals by our services and by the ledger
keep their readable messages; any other exception is logged and answered as
``internal error`` (never a 500: numerapi turns non-200 answers into ``KeyError: 'data'``,
protocol §2.4).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from ariadne import graphql_sync as ariadne_graphql_sync
from ariadne import load_schema_from_path, make_executable_schema
from graphql import GraphQLError, GraphQLObjectType, GraphQLResolveInfo, GraphQLSchema

from crowdquant.api.graphql import (
    accounts,
    chain_stakes,
    compute,
    datasets,
    diagnostics,
    rounds,
    scores,
    stakes,
    submissions,
    webhooks,
)
from crowdquant.api.graphql.context import ApiError, NotSupported, RequestContext
from crowdquant.api.graphql.limits import GraphQLLimits
from crowdquant.db.session import is_busy
from crowdquant.http.signing import SignedUrlError
from crowdquant.http.throttle import TooManyRequests
from crowdquant.ledger import LedgerError
from crowdquant.storage import StorageError
from crowdquant.tournament.errors import ServiceError

SCHEMA_FILE = Path(__file__).with_name("schema.graphql")
INTERNAL_ERROR = "internal error"

# Errors whose message is written for the participant.
READABLE_ERRORS: tuple[type[Exception], ...] = (
    ApiError,
    ServiceError,
    LedgerError,
    SignedUrlError,
    TooManyRequests,
)

logger = logging.getLogger(__name__)


REFUSALS: dict[str, str] = {}
"""Root fields a crowdquant server does not serve, with what it does instead."""


def _not_supported(_obj: Any, info: GraphQLResolveInfo[Any], **_args: Any) -> Any:
    # Named `_obj`, not `source`: create_submission-like fields have a `source` argument.
    refusal = REFUSALS.get(info.field_name)
    if refusal is not None:
        raise NotSupported(refusal)
    raise NotSupported(f"{info.field_name} is not available on this server yet")


@cache
def build_schema() -> GraphQLSchema:
    """The executable schema; root fields without a resolver answer `NotSupported`."""
    schema = make_executable_schema(
        load_schema_from_path(str(SCHEMA_FILE)),
        rounds.query,
        datasets.query,
        accounts.query,
        accounts.mutation,
        submissions.query,
        submissions.mutation,
        diagnostics.query,
        diagnostics.mutation,
        scores.query,
        stakes.query,
        stakes.mutation,
        stakes.account_type,
        stakes.round_type,
        compute.query,
        compute.mutation,
        compute.model_type,
        webhooks.mutation,
        chain_stakes.query,
    )
    for name in ("Query", "Mutation"):
        root = schema.type_map[name]
        assert isinstance(root, GraphQLObjectType)
        for field in root.fields.values():
            if field.resolve is None:
                field.resolve = _not_supported
    return schema


class _AriadneSilenced(logging.LoggerAdapter[logging.Logger]):
    """Ariadne logs every error with its traceback, refusals included; `format_error` logs
    the ones worth it, once."""

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        pass


@dataclass(frozen=True)
class Outcome:
    body: dict[str, Any]
    unexpected: bool
    """True if a resolver failed with an error that is not a refusal: roll back."""
    busy: bool = False
    """True if every unexpected error was SQLite's busy database: worth running again."""


def execute(
    data: Any, context: RequestContext, limits: GraphQLLimits, *, last_try: bool = True
) -> Outcome:
    """Run one GraphQL request within `limits`. An unexpected error is logged, unless it is
    SQLite's busy database on a try that is not the last (the caller runs the request again)."""
    unexpected: list[BaseException] = []

    def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
        original = error.original_error
        formatted: dict[str, Any] = error.formatted  # type: ignore[assignment]
        if original is None or isinstance(original, READABLE_ERRORS):
            return formatted
        if isinstance(original, GraphQLError):
            return formatted  # graphql-core's own refusal (of a bad argument, say)
        if isinstance(original, StorageError) and isinstance(original, ValueError):
            return formatted  # an invalid key or range: the caller's mistake
        unexpected.append(original)
        if last_try or not is_busy(original):
            logger.error("GraphQL resolver failed", exc_info=original)
        return {**formatted, "message": INTERNAL_ERROR}

    _, body = ariadne_graphql_sync(
        build_schema(),
        data,
        context_value=context,
        query_parser=limits.parse,
        query_validator=limits.validate,
        validation_rules=limits.rules,
        debug=False,
        error_formatter=format_error,
        logger=_AriadneSilenced(logger, {}),
    )
    busy = bool(unexpected) and all(is_busy(error) for error in unexpected)
    return Outcome(body=body, unexpected=bool(unexpected), busy=busy)
