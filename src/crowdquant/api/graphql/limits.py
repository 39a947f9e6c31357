"""How big a GraphQL request may be: tokens, depth and cost, each refused by name.

The parser stops past `max_tokens` (graphql-core's own limit), so a huge document is never
built; validation then refuses selections nested deeper than `max_depth` (counted in each
operation and fragment) and operations
whose cost (ariadne's `cost_validator`, one per selected field, aliases included) is over
`max_cost`. numerapi's own queries use about a hundred tokens, a depth of four and a few
dozen fields.

numerapi sends the same few documents over and over, so a short document's parse is kept
(graphql-core never changes a document), and so is the fact that it passes the rules that do
not read the variables (the spec's and the depth limit): a document known to pass them is
checked against the others alone (the cost rule, which reads them).
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from ariadne.validation import cost_validator
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    ValidationContext,
    parse,
    specified_rules,
    validate,
)
from graphql.utilities import TypeInfo

KEPT_QUERY_LENGTH = 4_000
"""Documents up to this many characters have their parse and their checks kept."""
KEPT_DOCUMENTS = 256


@dataclass(frozen=True)
class GraphQLLimits:
    max_tokens: int
    max_depth: int
    max_cost: int

    def parse(self, _context: Any, data: dict[str, Any]) -> DocumentNode:
        """The request's document, parsed with the token limit (ariadne's `query_parser`)."""
        return parsed(data["query"], self.max_tokens)

    def validate(
        self,
        schema: GraphQLSchema,
        document_ast: DocumentNode,
        rules: Collection[type[ASTValidationRule]] | None = None,
        max_errors: int | None = None,
        type_info: TypeInfo | None = None,
    ) -> list[GraphQLError]:
        """The document's errors under `rules` (ariadne's `query_validator`): the same as one
        pass of them all, in fewer passes for a document already known to pass the rules that
        do not read the variables."""
        every = tuple(rules or specified_rules)
        fixed = tuple(rule for rule in every if rule in _FIXED or rule is self.depth_rule)
        varying = [rule for rule in every if rule not in fixed]
        source = document_ast.loc.source.body if document_ast.loc is not None else None
        if source is None or len(source) > KEPT_QUERY_LENGTH:
            return validate(schema, document_ast, every, max_errors=max_errors)
        if _PASSED.has((id(schema), source, fixed)):
            return validate(schema, document_ast, varying, max_errors=max_errors) if varying else []
        errors = validate(schema, document_ast, every, max_errors=max_errors)
        if not errors:
            _PASSED.add((id(schema), source, fixed))
        return errors

    @property
    def depth_rule(self) -> type[ASTValidationRule]:
        return depth_limit(self.max_depth)

    def rules(
        self, _context: Any, _document: DocumentNode, data: dict[str, Any]
    ) -> Collection[type[ASTValidationRule]]:
        """The depth and cost rules for this request (ariadne's `validation_rules`)."""
        variables = data.get("variables")
        return [
            self.depth_rule,
            cost_validator(
                self.max_cost,
                default_cost=1,
                variables=variables if isinstance(variables, dict) else None,
            ),
        ]


@lru_cache(maxsize=KEPT_DOCUMENTS)
def _parsed_short(query: str, max_tokens: int) -> DocumentNode:
    return parse(query, max_tokens=max_tokens)


def parsed(query: str, max_tokens: int) -> DocumentNode:
    """`query` parsed with the token limit; a short one's parse is kept (errors never are)."""
    if len(query) > KEPT_QUERY_LENGTH:
        return parse(query, max_tokens=max_tokens)
    return _parsed_short(query, max_tokens)


_FIXED = frozenset(specified_rules)


class _Passed:
    """The (schema, document text, rules) known to pass, at most `KEPT_DOCUMENTS` of them
    (then forgotten all at once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: set[tuple[object, ...]] = set()

    def has(self, key: tuple[object, ...]) -> bool:
        return key in self._known

    def add(self, key: tuple[object, ...]) -> None:
        with self._lock:
            if len(self._known) >= KEPT_DOCUMENTS:
                self._known.clear()
            self._known.add(key)


_PASSED = _Passed()


@cache
def depth_limit(max_depth: int) -> type[ASTValidationRule]:
    """A rule refusing an operation whose fields nest deeper than `max_depth`."""

    class DepthLimit(ASTValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.depth = 0
            self.reported = False

        def enter_operation_definition(self, *_args: Any) -> None:
            self.depth, self.reported = 0, False

        enter_fragment_definition = enter_operation_definition

        def enter_field(self, node: FieldNode, *_args: Any) -> None:
            if node.selection_set is None:
                return
            self.depth += 1
            if self.depth > max_depth and not self.reported:
                self.reported = True
                self.report_error(
                    GraphQLError(
                        f"the query is nested deeper than the limit of {max_depth} levels",
                        node,
                    )
                )

        def leave_field(self, node: FieldNode, *_args: Any) -> None:
            if node.selection_set is not None:
                self.depth -= 1

    return DepthLimit
