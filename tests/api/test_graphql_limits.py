"""GraphQL queries past the token, depth or cost limit are refused by name, over real HTTP,
with numerapi's protocol: HTTP 200 and ``{"errors": [{"message": ...}]}``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.server.app import create_app
from crowdquant.settings import Settings

from ..tournament.live_market import TUESDAY_NOON, local_storage
from .server import serve

SETTINGS = Settings(mode="local")


@pytest.fixture
def url(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[str]:
    app = create_app(
        Settings(home=tmp_path / "home"),
        clock=ManualClock(TUESDAY_NOON),
        sessions=sessions,
        storage=local_storage(tmp_path / "files"),
    )
    with serve(app) as served:
        yield served


def _errors(url: str, query: str) -> list[str]:
    answer = httpx.post(url, json={"query": query}, timeout=30)
    assert answer.status_code == 200
    body = answer.json()
    assert "data" not in body or body["data"] is None
    return [error["message"] for error in body["errors"]]


def test_a_query_with_too_many_tokens_is_not_parsed(url: str) -> None:
    aliases = " ".join(f"a{i}: rounds(tournament: 8) {{ number }}" for i in range(20_000))
    assert _errors(url, f"{{ {aliases} }}") == [
        f"Syntax Error: Document contains more than {SETTINGS.graphql_max_tokens} tokens."
        " Parsing aborted."
    ]


def test_a_query_selecting_too_many_fields_is_refused(url: str) -> None:
    # Under the token limit, over the cost limit: one field per alias.
    count = SETTINGS.graphql_max_cost + 1
    aliases = " ".join(f"a{i}: username" for i in range(count))
    (message,) = _errors(url, f"{{ account {{ {aliases} }} }}")
    assert message.startswith(f"The query exceeds the maximum cost of {SETTINGS.graphql_max_cost}.")


def test_a_query_nested_too_deep_is_refused(url: str) -> None:
    depth = SETTINGS.graphql_max_depth + 1
    query = "{ " + "a { " * depth + "b" + " }" * depth + " }"
    messages = _errors(url, query)
    limit = f"the query is nested deeper than the limit of {SETTINGS.graphql_max_depth} levels"
    assert limit in messages


def test_a_deeply_nested_document_is_an_error_not_a_crash(url: str) -> None:
    query = "{ " + "a { " * 600 + "b" + " }" * 600 + " }"
    (message,) = _errors(url, query)
    assert message.startswith("Syntax Error: Document is nested too deeply.")


def test_an_argument_of_the_wrong_type_is_named_not_an_internal_error(url: str) -> None:
    for query, named in (
        ("{ rounds(tournament: 0.5) { number } }", "'tournament'"),
        ('{ listDatasets(round: "one") }', "'round'"),
        ("{ model(modelId: 7) { id } }", "'modelId'"),
        ("{ rounds(tournament: $missing) { number } }", "'$missing'"),
    ):
        messages = _errors(url, query)
        assert "internal error" not in messages
        assert any(named in message for message in messages), messages


def test_a_deeply_nested_json_body_is_an_error_not_a_crash(
    url: str, raised_recursion_limit: None
) -> None:
    for body in (b"[" * 100_000, b'{"query":' * 50_000):
        answer = httpx.post(url, content=body, timeout=30)
        assert answer.status_code == 200
        assert answer.json() == {
            "errors": [{"message": "the request body is JSON nested too deeply"}]
        }


def test_a_kept_document_is_still_checked_by_the_rules_that_read_the_request() -> None:
    from graphql import ASTValidationRule, FieldNode, GraphQLError, specified_rules

    from crowdquant.api.graphql import build_schema
    from crowdquant.api.graphql.limits import GraphQLLimits

    class RefusesRounds(ASTValidationRule):
        def enter_field(self, node: FieldNode, *_args: object) -> None:
            if node.name.value == "rounds":
                self.report_error(GraphQLError("no rounds today", node))

    limits = GraphQLLimits(max_tokens=2000, max_depth=8, max_cost=100)
    schema = build_schema()
    query = "{ rounds(tournament: 8) { number } }"
    fixed = (*specified_rules, limits.depth_rule)
    for _ in range(2):  # checked in full, then known to pass the fixed rules
        assert limits.validate(schema, limits.parse(None, {"query": query}), fixed) == []
        errors = limits.validate(
            schema, limits.parse(None, {"query": query}), (*fixed, RefusesRounds)
        )
        assert [error.message for error in errors] == ["no rounds today"]
    deep = "{ " + "a { " * 9 + "b" + " }" * 9 + " }"
    for _ in range(2):  # a refused document is refused every time
        errors = limits.validate(schema, limits.parse(None, {"query": deep}), fixed)
        assert "the query is nested deeper than the limit of 8 levels" in [
            error.message for error in errors
        ]


@pytest.mark.parametrize(
    "query",
    [
        "{ rounds(tournament: 8) { number openTime } account { username } }",
        "query($t: Int!) { rounds(tournament: $t, limit: 2) { roundScoreConfigs { name } } }",
        "{ a: account { username } b: account { username id models { id name } } }",
        "fragment F on Account { username models { id } } { account { ...F ...F id } }",
        "{ account { ... on Account { username } ... { id } } }",
        "{ nothing { at all } account { nothing username } }",  # unknown fields cost nothing
        "{ __typename __schema { types { name fields { name } } } account { id } }",
        "query A { account { username } } query B { account { id username } }",
        'mutation { create_submission(filename: "f", tournament: 8) { id } }',
    ],
)
def test_the_cost_is_counted_as_ariadne_counts_it(query: str) -> None:
    from ariadne.validation import cost_validator
    from graphql import parse, validate

    from crowdquant.api.graphql import build_schema
    from crowdquant.api.graphql.limits import cost_limit

    schema, document = build_schema(), parse(query)
    ariadne = cost_validator(0, default_cost=1, variables={"t": 8})
    ours, theirs = (
        validate(schema, document, [cost_limit(0)]),
        validate(schema, document, [ariadne]),
    )
    assert [error.message for error in ours] == [error.message for error in theirs]
    assert [error.extensions for error in ours] == [error.extensions for error in theirs]
    assert "Actual cost is" in ours[-1].message


def test_fragments_spread_in_a_cycle_are_refused_and_counted_once() -> None:
    from graphql import parse, specified_rules, validate

    from crowdquant.api.graphql import build_schema
    from crowdquant.api.graphql.limits import cost_limit

    query = "fragment F on Account { ...G } fragment G on Account { ...F } { account { ...F } }"
    errors = validate(build_schema(), parse(query), [*specified_rules, cost_limit(0)])
    messages = [error.message for error in errors]
    assert "Cannot spread fragment 'F' within itself via 'G'." in messages
    assert "The query exceeds the maximum cost of 0. Actual cost is 1" in messages


def test_a_variable_of_the_wrong_type_is_named_not_an_internal_error(url: str) -> None:
    query = "query($t: Int!) { rounds(tournament: $t) { number } }"
    answer = httpx.post(url, json={"query": query, "variables": {"t": "eight"}}, timeout=30)
    messages = [error["message"] for error in answer.json()["errors"]]
    assert "internal error" not in messages
    assert any("'$t'" in message for message in messages), messages
