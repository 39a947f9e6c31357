"""Queries and mutations generated from the GraphQL schema (schemathesis) against numerapi's
endpoint, on both databases: with alice's key, bob's key and none; arguments generated or
naming real things (models, submissions, rounds, amounts near the edge); documents that fit
the schema and documents that do not. Then request bodies around numerapi's documents with
variables, while round 1 is closing (past its close time, not yet closed by the scheduler).

GraphQL answers 200 with ``errors`` for a refusal, so "no 5xx" here means: every answer is
a 200 JSON object with ``data`` or ``errors``, no error is the ``internal error`` of an
unexpected failure, and data never breaks the schema (a null in a non-null field). A
refused request (errors, and no field answered) changes nothing: no row, no ledger balance
or posting, no stored file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import schemathesis
from graphql import (
    ArgumentNode,
    FieldNode,
    GraphQLField,
    IntValueNode,
    NameNode,
    OperationDefinitionNode,
    StringValueNode,
    ValueNode,
    parse,
    print_ast,
)
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.graphql import nodes
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.api.graphql import INTERNAL_ERROR, SCHEMA_FILE, build_schema
from crowdquant.data.release import DatasetVersion

from .fuzz_world import AMOUNTS, CALLERS, FuzzWorld, Unchanged, built, fuzz_settings, fuzz_world

__all__ = ["built"]

EXAMPLES_PER_FIELD = 10
EXAMPLES_OF_ENVELOPES = 150
RECORDED = "(recorded as submission"

schemathesis.graphql.scalar("bool", st.booleans().map(nodes.Boolean))
schemathesis.graphql.scalar("Str", st.text(max_size=20).map(nodes.String))


def mostly(usual: Any, *others: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.just(usual), st.just(usual), st.sampled_from([usual, *others]))


def real_arguments(world: FuzzWorld, caller: str | None) -> dict[str, st.SearchStrategy[Any]]:
    """Per argument name, values that name real things (mostly the caller's own) or sit near
    the edge."""
    own = caller if caller in ("alice", "bob") else "alice"
    other = "bob" if own == "alice" else "alice"
    ids = world.ids
    return {
        "modelId": mostly(ids[f"{own}_model"], ids[f"{other}_model"], ids["alice_submission"]),
        "model_id": mostly(f"{own}_model", f"{other}_model"),
        "modelName": mostly(f"{own}_model", f"{other}_model"),
        "id": mostly(ids["alice_submission"], ids["alice_model"]),
        "submissionId": st.just(ids["alice_submission"]),
        "roundId": mostly(ids["round_id"], "1"),
        "username": mostly(own, other),
        "tournament": mostly(8, 11),
        "tournamentNumber": mostly(8, 11),
        "number": mostly(1, 2),
        "round": mostly(1, 0),
        "filename": st.sampled_from(
            [
                *(ids["alice_valid_upload"], ids["alice_invalid_upload"]),
                *("v1/features.json", "v1/validation.parquet", "live.parquet", "p.csv"),
            ]
        ),
        "value": st.sampled_from(AMOUNTS),
        "amount": st.sampled_from(AMOUNTS),
        "maxAmount": st.sampled_from(AMOUNTS),
        "type": st.sampled_from(["increase", "decrease"]),
    }


def literal(value: Any) -> ValueNode:
    if isinstance(value, int):
        return IntValueNode(value=str(value))
    return StringValueNode(value=value)


def with_real_arguments(
    document: str, field: GraphQLField, values: dict[str, st.SearchStrategy[Any]], pick: Any
) -> str:
    """`document` with every argument of its root field that has real values set to one."""
    parsed = parse(document)
    (operation,) = parsed.definitions
    assert isinstance(operation, OperationDefinitionNode)
    root = operation.selection_set.selections[0]
    assert isinstance(root, FieldNode)
    arguments = {argument.name.value: print_ast(argument) for argument in root.arguments or ()}
    for name in field.args:
        if name in values:
            value = literal(pick(values[name]))
            arguments[name] = print_ast(ArgumentNode(name=NameNode(value=name), value=value))
    listed = f"({', '.join(arguments.values())})" if arguments else ""
    selection = print_ast(root.selection_set) if root.selection_set else ""
    return f"{operation.operation.value} {{ {root.name.value}{listed} {selection} }}"


def refused(answer: dict[str, Any]) -> bool:
    """Errors, and no root field answered; an upload that fails validation is recorded on
    purpose, and says so."""
    data = answer.get("data") or {}
    errors = answer.get("errors") or []
    recorded = any(RECORDED in error["message"] for error in errors)
    return bool(errors) and all(value is None for value in data.values()) and not recorded


def check_answer(response: httpx.Response, document: str) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.status_code} for {document}"
    answer = response.json()
    assert isinstance(answer, dict) and ("data" in answer or "errors" in answer), answer
    for error in answer.get("errors") or []:
        assert error["message"] != INTERNAL_ERROR, f"internal error for {document}"
        assert "non-nullable" not in error["message"], f"{error['message']} for {document}"
    return answer


def fuzz(operation: APIOperation, world: FuzzWorld, unchanged: Unchanged) -> None:
    http = httpx.Client(base_url=world.url, timeout=30)
    root, name = operation.label.split(".")
    field = build_schema().type_map[root].fields[name]  # type: ignore[union-attr]
    fitting = operation.as_strategy()
    documents = st.one_of(
        fitting, fitting, operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    )

    @fuzz_settings(EXAMPLES_PER_FIELD)
    @given(
        case=documents,
        caller=st.sampled_from(CALLERS),
        real=st.sampled_from([True, True, False]),
        choices=st.data(),
    )
    def exchange(case: Any, caller: str | None, real: bool, choices: st.DataObject) -> None:
        document = case.body
        if real and case.meta.generation.mode is GenerationMode.POSITIVE:
            values = real_arguments(world, caller)
            document = with_real_arguments(document, field, values, choices.draw)
        headers = {} if caller is None else {"Authorization": world.tokens[caller]}
        response = http.post("/", json={"query": document}, headers=headers)
        answer = check_answer(response, document)
        unchanged.after(refused(answer), f"{document} ({answer})")

    exchange()


def test_generated_graphql_requests(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> None:
    with fuzz_world(sessions, tmp_path, built) as world:
        schema = schemathesis.graphql.from_file(SCHEMA_FILE.read_text())
        schema.config.update(base_url=world.url)
        unchanged = Unchanged.of(world)
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            try:
                fuzz(operation, world, unchanged)
            except (Exception, BaseExceptionGroup) as error:  # every field's findings
                failures.append(f"{operation.label}: {error}")
        assert not failures, "\n\n".join(failures)


WITH_VARIABLES = [
    "query($tournament: Int, $number: Int) { rounds(tournament: $tournament, number: $number)"
    " { id number openTime roundScoreConfigs { name } } }",
    "query($modelId: String) { submissions(modelId: $modelId) { id filename round { number } } }",
    "query($username: String, $tournament: Int) { accountProfile(username: $username,"
    " tournament: $tournament) { models { id displayName } } }",
    "query { account { username availableNmr models { id name v2Stake { status } } } }",
    "mutation($value: String, $type: String, $modelId: String, $tournamentNumber: Int)"
    " { v2ChangeStake(value: $value, type: $type, modelId: $modelId,"
    " tournamentNumber: $tournamentNumber) { id requestedAmount type status dueDate } }",
    "mutation($drain: bool, $modelId: String, $amount: String)"
    " { releaseStake(drain: $drain, modelId: $modelId, amount: $amount) { id status } }",
    "mutation($filename: String, $tournament: Int, $modelId: String) { create_submission("
    "filename: $filename, tournament: $tournament, modelId: $modelId) { id filename } }",
    'query A { tournaments { name } } mutation B($modelId: String) { setUserBio(value: "x",'
    " modelId: $modelId) }",
]
"""numerapi-style documents that take their arguments as variables."""

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)


def envelopes(world: FuzzWorld, caller: str | None) -> st.SearchStrategy[Any]:
    """Request bodies: mostly numerapi's documents with variables real, generated or of the
    wrong shape; then an envelope of any JSON values, and any JSON at all."""
    real = real_arguments(world, caller)
    values = {name: st.one_of(strategy, strategy, JSON) for name, strategy in real.items()}
    variables = st.fixed_dictionaries({}, optional={**values, "drain": st.booleans() | JSON})
    numerapi_like = st.fixed_dictionaries(
        {"query": st.sampled_from(WITH_VARIABLES)},
        optional={"variables": variables, "operationName": st.sampled_from(["A", "B", "C"])},
    )
    odd = st.fixed_dictionaries(
        {"query": st.text(max_size=30) | JSON}, optional={"variables": JSON, "operationName": JSON}
    )
    return st.one_of(numerapi_like, numerapi_like, numerapi_like, odd, JSON)


def test_generated_graphql_envelopes(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> None:
    with fuzz_world(sessions, tmp_path, built, closing=True) as world:
        http = httpx.Client(base_url=world.url, timeout=30)
        unchanged = Unchanged.of(world)

        @fuzz_settings(EXAMPLES_OF_ENVELOPES)
        @given(
            sent=st.sampled_from(CALLERS).flatmap(
                lambda caller: st.tuples(st.just(caller), envelopes(world, caller))
            )
        )
        def exchange(sent: tuple[str | None, Any]) -> None:
            caller, body = sent
            headers = {} if caller is None else {"Authorization": world.tokens[caller]}
            response = http.post("/", json=body, headers=headers)
            answer = check_answer(response, str(body))
            unchanged.after(refused(answer), f"{body} ({answer})")

        exchange()
