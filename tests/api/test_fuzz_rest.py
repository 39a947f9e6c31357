"""Requests generated from the OpenAPI document (schemathesis) against the served REST API,
on both databases: with alice's key, bob's key and none; with the path naming real things
and with generated values; data that fits the document, data that does not, and bodies
near the edge of what the services accept (amounts, names, predictions files).

Every answer is no 5xx, conforms to the document (status, content type, headers, body),
refuses data that breaks the document, and a refused request (4xx) changes nothing: no row,
no ledger balance or posting, no stored file. An operation that needs a key answers 2xx
only to a valid one, and never to bob for alice's model or submission.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import given
from hypothesis import strategies as st
from schemathesis import APIOperation, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.data.release import DatasetVersion

from .fuzz_world import AMOUNTS, CALLERS, FuzzWorld, Unchanged, built, fuzz_settings, fuzz_world

__all__ = ["built"]

EXAMPLES_PER_OPERATION = 14
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


def real_path_values(world: FuzzWorld) -> dict[str, Any]:
    return {
        "number": 8,
        "round": 1,
        "model_id": world.ids["alice_model"],
        "submission_id": world.ids["alice_submission"],
        "filename": "live.parquet",
    }


def edge_bodies(world: FuzzWorld) -> dict[str, st.SearchStrategy[Any]]:
    """Bodies the services, not the document, decide about, per operation."""
    upload = st.fixed_dictionaries(
        {"file": st.sampled_from([world.predictions, world.predictions[:200], b"id,prediction\n"])}
    )
    return {
        "POST /api/v1/models": st.fixed_dictionaries(
            {
                "tournament": st.sampled_from([8, 11, 99]),
                "name": st.sampled_from(["fresh_model", "alice_model", "x", "Ünïcode", "a b"]),
            }
        ),
        "POST /api/v1/models/{model_id}/stake": st.fixed_dictionaries(
            {
                "change": st.sampled_from(["increase", "decrease"]),
                "amount": st.sampled_from(AMOUNTS),
            }
        ),
        "PUT /api/v1/models/{model_id}/round-stake": st.fixed_dictionaries(
            {
                "amount": st.sampled_from(AMOUNTS),
                "confidence": st.sampled_from(["0.5", "1", "1e-3", 0.25, "NaN"]),
            }
        ),
        "POST /api/v1/models/{model_id}/submissions": upload,
        "POST /api/v1/models/{model_id}/diagnostics": upload,
    }


def cases_for(operation: APIOperation, world: FuzzWorld) -> st.SearchStrategy[Any]:
    """Generated cases of `operation`: the path naming real things (with an edge body where
    the operation has one), every part generated, and data that breaks the document."""
    names = {parameter.name for parameter in operation.path_parameters}
    pinned = {name: value for name, value in real_path_values(world).items() if name in names}
    strategies = [
        operation.as_strategy(path_parameters=pinned or None),
        operation.as_strategy(),
        operation.as_strategy(generation_mode=GenerationMode.NEGATIVE),
    ]
    if (bodies := edge_bodies(world).get(operation.label)) is not None:
        strategies.append(
            bodies.flatmap(
                lambda body: operation.as_strategy(path_parameters=pinned or None, body=body)
            )
        )
    return st.one_of(strategies)


def fuzz(operation: APIOperation, world: FuzzWorld, unchanged: Unchanged) -> None:
    http = requests.Session()
    secured = bool(operation.definition.raw.get("security"))

    def names_alices(case: Any) -> bool:
        """Whether the path names alice's model or submission."""
        named = set((case.path_parameters or {}).values())
        return bool(named & {world.ids["alice_model"], world.ids["alice_submission"]})

    @fuzz_settings(EXAMPLES_PER_OPERATION)
    @given(case=cases_for(operation, world), caller=st.sampled_from(CALLERS))
    def exchange(case: Any, caller: str | None) -> None:
        headers = {
            name: value
            for name, value in (case.headers or {}).items()
            if name.lower() != "authorization"
        }
        if caller is not None:
            headers["Authorization"] = world.tokens[caller]
        case.headers = headers
        response = case.call(session=http)
        case.validate_response(response, checks=CHECKS)
        request = (
            f"{case.method} {case.formatted_path} ({response.status_code} {response.text[:300]})"
        )
        if secured and 200 <= response.status_code < 300:
            assert caller in ("alice", "bob"), f"{request} answered without a valid key"
            assert caller == "alice" or not names_alices(case), f"{request} answered bob"
        unchanged.after(400 <= response.status_code < 500, request)

    exchange()


def test_generated_rest_requests(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> None:
    with fuzz_world(sessions, tmp_path, built) as world:
        document = httpx.get(f"{world.url}/api/openapi.json", timeout=30).json()
        schema = schemathesis.openapi.from_dict(document)
        schema.config.update(base_url=world.url)
        unchanged = Unchanged.of(world)
        created = httpx.post(
            f"{world.url}/api/v1/models",
            json={"tournament": 11, "name": "watched"},
            headers={"Authorization": world.tokens["alice"]},
        )
        assert created.status_code == 201, created.text
        with pytest.raises(AssertionError, match="models: added"):  # the watch sees changes
            unchanged.after(True, "a request that made a model")
        failures: list[str] = []
        for result in schema.get_all_operations():
            operation = result.ok()
            try:
                fuzz(operation, world, unchanged)
            except (Exception, BaseExceptionGroup) as error:  # every operation's findings
                failures.append(f"{operation.label}: {error}")
        assert not failures, "\n\n".join(failures)
