"""How big a GraphQL request may be: tokens, depth and cost, each refused by name.

The parser stops past `max_tokens` (graphql-core's own limit), so a huge document is never
built; validation then refuses selections nested deeper than `max_depth` (counted in each
operation and fragment) and documents whose cost is over `max_cost`: one per selection of a
field the schema defines, aliases included, a fragment's fields each time it is spread (what
ariadne's `cost_validator` counts without cost directives, which the schema has none of).
numerapi's own queries use about a hundred tokens, a depth of four and a few dozen fields.

numerapi sends the same few documents over and over, so a short document's parse is kept
(graphql-core never changes a document), and so is the fact that it passes the spec's rules
and the limits, none of which reads the variables: a document known to pass them is checked
against any others alone.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import cache, lru_cache
from typing import Any

from graphql import (
    ArgumentNode,
    ASTValidationRule,
    DocumentNode,
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLNamedType,
    GraphQLObjectType,
    GraphQLSchema,
    InlineFragmentNode,
    ListValueNode,
    ObjectValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Undefined,
    ValidationContext,
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
    parse,
    print_ast,
    specified_rules,
    validate,
    value_from_ast,
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
        read no variables (the spec's and `own_rules`)."""
        every = tuple(rules or specified_rules)
        own = self.own_rules
        fixed = tuple(rule for rule in every if rule in _FIXED or rule in own)
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

    @property
    def cost_rule(self) -> type[ASTValidationRule]:
        return cost_limit(self.max_cost)

    @property
    def own_rules(self) -> tuple[type[ASTValidationRule], ...]:
        """The depth and cost rules, and the naming of bad arguments."""
        return (self.depth_rule, self.cost_rule, InvalidArgumentNamed)

    def rules(
        self, _context: Any, _document: DocumentNode, _data: dict[str, Any]
    ) -> Collection[type[ASTValidationRule]]:
        """`own_rules`, for every request (ariadne's `validation_rules`)."""
        return list(self.own_rules)


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


@cache
def cost_limit(max_cost: int) -> type[ASTValidationRule]:
    """A rule refusing a document whose operations select more than `max_cost` fields in all
    (see the module's note); a fragment's fields are counted once per spread, worked out once
    per fragment."""

    class CostLimit(ValidationRule):
        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.cost = 0
            self.fragments: dict[str, int] = {}
            self.expanding: set[str] = set()  # a cycle is refused by the spec's rules

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            root = self.context.schema.get_root_type(node.operation)
            self.cost += self._cost(node.selection_set, root)

        def leave_operation_definition(self, *_args: Any) -> None:
            if self.cost > max_cost:
                self.report_error(
                    GraphQLError(
                        f"The query exceeds the maximum cost of {max_cost}."
                        f" Actual cost is {self.cost}",
                        extensions={
                            "cost": {"requestedQueryCost": self.cost, "maximumAvailable": max_cost}
                        },
                    )
                )

        def _cost(self, selections: SelectionSetNode | None, parent: object) -> int:
            if selections is None:
                return 0
            fields = (
                parent.fields
                if isinstance(parent, GraphQLObjectType | GraphQLInterfaceType)
                else {}
            )
            total = 0
            for selection in selections.selections:
                if isinstance(selection, FieldNode):
                    field = fields.get(selection.name.value)
                    if field is not None:
                        below = get_named_type(field.type)
                        total += 1 + self._cost(selection.selection_set, below)
                elif isinstance(selection, InlineFragmentNode):
                    condition = selection.type_condition
                    inner = parent if condition is None else self._type(condition.name.value)
                    total += self._cost(selection.selection_set, inner)
                elif isinstance(selection, FragmentSpreadNode):
                    total += self._fragment_cost(selection.name.value)
            return total

        def _fragment_cost(self, name: str) -> int:
            if name not in self.fragments:
                fragment = self.context.get_fragment(name)
                if fragment is None or name in self.expanding:
                    return 0
                self.expanding.add(name)
                condition = self._type(fragment.type_condition.name.value)
                self.fragments[name] = self._cost(fragment.selection_set, condition)
                self.expanding.discard(name)
            return self.fragments[name]

        def _type(self, name: str) -> GraphQLNamedType | None:
            return self.context.schema.get_type(name)

    return CostLimit


class InvalidArgumentNamed(ValidationRule):
    """Names the argument whose written value its type refuses: the spec's rule says what is
    wrong with the value, not which argument holds it. A value holding variables is left to
    the execution, which names the variable."""

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        argument = self.context.get_argument()
        if argument is None or _holds_variable(node.value):
            return
        if value_from_ast(node.value, argument.type) is Undefined:
            message = f"Argument '{node.name.value}' has invalid value {print_ast(node.value)}."
            self.report_error(GraphQLError(message, node.value))


def _holds_variable(value: ValueNode) -> bool:
    if isinstance(value, VariableNode):
        return True
    if isinstance(value, ListValueNode):
        return any(_holds_variable(item) for item in value.values)
    if isinstance(value, ObjectValueNode):
        return any(_holds_variable(field.value) for field in value.fields)
    return False
