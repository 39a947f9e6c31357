"""SQLite's "database is locked" (another writer came first) and PostgreSQL's serialization
failures and deadlocks make a request run again in a new transaction, on the REST and the
GraphQL paths alike; past the last try it is answered as an internal error, having changed
nothing."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from typing import Any

import httpx
import psycopg.errors
import pytest
from sqlalchemy.exc import OperationalError

import crowdquant.api.graphql.rounds as graphql_rounds
import crowdquant.api.rest.tournaments as rest_tournaments
from crowdquant.db.session import BUSY_RETRIES, is_busy

from .helpers import RestWorld

LOCKED = OperationalError("UPDATE api_keys ...", {}, sqlite3.OperationalError("database is locked"))
SERIALIZATION = OperationalError(
    "UPDATE ledger_balances ...", {}, psycopg.errors.SerializationFailure("could not serialize")
)
DEADLOCK = OperationalError("UPDATE stake_changes ...", {}, psycopg.errors.DeadlockDetected("x"))


def busy_first(
    times: int, real: Callable[..., Any], error: Exception = LOCKED
) -> tuple[Callable[..., Any], list[int]]:
    """`real`, failing with `error` (SQLite's busy error) on its first `times` calls."""
    calls: list[int] = []

    def flaky(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) <= times:
            raise error
        return real(*args, **kwargs)

    return flaky, calls


def test_only_sqlites_busy_error_is_busy() -> None:
    assert is_busy(LOCKED)
    other = OperationalError("SELECT 1", {}, sqlite3.OperationalError("no such table: x"))
    assert not is_busy(other) and not is_busy(ValueError("database is locked"))


def test_serialization_failures_and_deadlocks_are_busy() -> None:
    assert is_busy(SERIALIZATION) and is_busy(DEADLOCK)
    unique = OperationalError("INSERT ...", {}, psycopg.errors.UniqueViolation("taken"))
    assert not is_busy(unique)


@pytest.mark.parametrize("error", [SERIALIZATION, DEADLOCK], ids=["serialization", "deadlock"])
def test_a_rest_request_that_lost_a_race_on_postgresql_runs_again(
    world: RestWorld, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    flaky, calls = busy_first(BUSY_RETRIES - 1, rest_tournaments.list_tournaments, error)
    monkeypatch.setattr(rest_tournaments, "list_tournaments", flaky)
    answer = httpx.get(f"{world.url}/api/v1/tournaments")
    assert answer.status_code == 200 and [t["number"] for t in answer.json()] == [8, 11]
    assert len(calls) == BUSY_RETRIES


def test_a_busy_rest_request_runs_again(world: RestWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    flaky, calls = busy_first(BUSY_RETRIES - 1, rest_tournaments.list_tournaments)
    monkeypatch.setattr(rest_tournaments, "list_tournaments", flaky)
    answer = httpx.get(f"{world.url}/api/v1/tournaments")
    assert answer.status_code == 200 and [t["number"] for t in answer.json()] == [8, 11]
    assert len(calls) == BUSY_RETRIES


def test_a_rest_request_busy_every_time_is_an_internal_error(
    world: RestWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    flaky, calls = busy_first(BUSY_RETRIES, rest_tournaments.list_tournaments)
    monkeypatch.setattr(rest_tournaments, "list_tournaments", flaky)
    answer = httpx.get(f"{world.url}/api/v1/tournaments")
    assert answer.status_code == 500 and answer.json()["detail"]["code"] == "internal_error"
    assert len(calls) == BUSY_RETRIES


@pytest.mark.parametrize(("busy", "answered"), [(BUSY_RETRIES - 1, True), (BUSY_RETRIES, False)])
def test_a_busy_graphql_request_runs_again(
    world: RestWorld,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    busy: int,
    answered: bool,
) -> None:
    flaky, calls = busy_first(busy, graphql_rounds.get_tournament)
    monkeypatch.setattr(graphql_rounds, "get_tournament", flaky)
    body = httpx.post(
        world.url + "/", json={"query": "{ rounds(tournament: 8) { number } }"}
    ).json()
    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    if answered:
        assert body == {"data": {"rounds": [{"number": 1}]}}
        assert errors == []  # the tries that were run again are not failures
    else:
        assert body["errors"][0]["message"] == "internal error"
        assert [record.getMessage() for record in errors] == ["GraphQL resolver failed"]
    assert len(calls) == BUSY_RETRIES
