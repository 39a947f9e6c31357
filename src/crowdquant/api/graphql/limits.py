"""How big a GraphQL request may be: tokens, depth and cost, each refused by name.

The parser stops past `max_tokens` (graphql-core's own limit), so a huge document is never
built; validation then refuses selections nested deeper than `max_depth` (counted in each
operation and fragment) and operations
whose cost (ariadne's `cost_validator`, one per selected field, aliases included) is over
`max_cost`. numerapi's own queries use about a hundred tokens, a depth of four and a few
dozen fields.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from ariadne.validation import cost_validator
from graphql import (
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    GraphQLError,
    ValidationContext,
    parse,
)


@dataclass(frozen=True)
class GraphQLLimits:
    max_tokens: int
    max_depth: int
    max_cost: int

    def parse(self, _context: Any, data: dict[str, Any]) -> DocumentNode:
        """The request's document, parsed with the token limit (ariadne's `query_parser`)."""
        return parse(data["query"], max_tokens=self.max_tokens)

    def rules(
        self, _context: Any, _document: DocumentNode, data: dict[str, Any]
    ) -> Collection[type[ASTValidationRule]]:
        """The depth and cost rules for this request (ariadne's `validation_rules`)."""
        variables = data.get("variables")
        return [
            depth_limit(self.max_depth),
            cost_validator(
                self.max_cost,
                default_cost=1,
                variables=variables if isinstance(variables, dict) else None,
            ),
        ]


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
