"""Generated form posts and page requests against the served site, on both databases: every
route of the pages, signed in as alice or not, with the form token right or wrong, fields
missing, generated or near the edge (amounts, names, choices), paths naming real things or
not; while round 1 is closing (past its close time, before the scheduler closes it). No
answer is a 5xx, and a refused post (4xx) changes nothing: no row, no ledger
balance or posting, no stored file."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from fastapi.routing import APIRoute
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.data.release import DatasetVersion
from crowdquant.web import (
    account,
    dashboard,
    fund,
    leaderboard,
    model_uploads,
    models,
    operator,
    profiles,
    rounds,
    settings,
    wallet,
    webhooks,
)
from crowdquant.web.templating import CSRF_COOKIE

from ..api.fuzz_world import AMOUNTS, FuzzWorld, Unchanged, built, fuzz_settings, fuzz_world

__all__ = ["built"]

PAGES = (
    account,
    dashboard,
    models,
    model_uploads,
    wallet,
    settings,
    leaderboard,
    profiles,
    rounds,
    operator,
    fund,
    webhooks,
)
EXAMPLES_PER_ROUTE = 10
SKIPPED = {"/logout"}
"""Routes that would end the signed-in browser's session for the routes after them."""
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
WORDS = ["increase", "decrease", "compound", "wallet", "read", "upload", "stake", "alice", "8"]


def browser(world: FuzzWorld, *, signed_in: bool) -> tuple[httpx.Client, str]:
    """A browser with the site's form token (and alice's session if `signed_in`)."""
    client = httpx.Client(base_url=world.url, timeout=30)
    token = CSRF.search(client.get("/login").text)
    assert token is not None
    if signed_in:
        answer = client.post(
            "/login", data={"csrf": token[1], "username": "alice", "password": "x" * 10}
        )
        assert answer.status_code == 303, answer.text
    return client, token[1]


def path_values(world: FuzzWorld) -> dict[str, st.SearchStrategy[Any]]:
    return {
        "model_id": st.sampled_from(
            [world.ids["alice_model"], world.ids["bob_model"], str(uuid.uuid4()), "x"]
        ),
        "number": st.sampled_from(["8", "11", "0", "99999999999999999999", "x"]),
        "public_id": st.text(alphabet="abcdef0123456789", max_size=12),
        "model_name": st.sampled_from(["alice_model", "bob_model", "nobody"]),
        "tournament": st.sampled_from(["8", "11", "x"]),
        "round_number": st.sampled_from(["1", "2", "-1"]),
        "action": st.sampled_from(["close", "resolve", "score", "x"]),
        "upload_id": st.sampled_from([str(uuid.uuid4()), "x"]),
    }


def field_values() -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=20), st.sampled_from(AMOUNTS), st.sampled_from(WORDS))


def requests_of(route: APIRoute, method: str, world: FuzzWorld) -> st.SearchStrategy[Any]:
    """(path, form) pairs of `route`: its path filled in, its form fields generated."""
    values = path_values(world)
    parameters = re.findall(r"{(\w+)(?::path)?}", route.path)
    path = st.fixed_dictionaries(
        {name: values.get(name, st.text(min_size=1, max_size=10)) for name in parameters}
    ).map(
        lambda found: re.sub(
            r"{(\w+)(?::path)?}", lambda m: quote(str(found[m[1]]), safe=""), route.path
        )
    )
    if method != "POST":
        return st.tuples(path, st.just({}))
    fields = [param.name for param in route.dependant.body_params]
    form = st.fixed_dictionaries({}, optional={name: field_values() for name in fields})
    return st.tuples(path, form)


def fuzz(
    route: APIRoute,
    method: str,
    world: FuzzWorld,
    browsers: dict[bool, tuple[httpx.Client, str]],
    unchanged: Unchanged,
) -> None:
    @fuzz_settings(EXAMPLES_PER_ROUTE)
    @given(
        sent=requests_of(route, method, world),
        signed_in=st.booleans(),
        right_token=st.sampled_from([True, True, False]),
    )
    def exchange(sent: tuple[str, dict[str, str]], signed_in: bool, right_token: bool) -> None:
        path, form = sent
        client, token = browsers[signed_in]
        if method == "POST":
            form = {**form, "csrf": token if right_token else "not-the-token"}
            answer = client.post(path, data=form)
        else:
            answer = client.get(path)
        request = f"{method} {path} {form} ({answer.status_code} {answer.text[:300]})"
        assert answer.status_code < 500, request
        unchanged.after(method == "POST" and 400 <= answer.status_code < 500, request)

    exchange()


def test_generated_form_posts_and_pages(
    sessions: sessionmaker[Session], tmp_path: Path, built: DatasetVersion
) -> None:
    with fuzz_world(sessions, tmp_path, built, closing=True) as world:
        browsers = {True: browser(world, signed_in=True), False: browser(world, signed_in=False)}
        assert CSRF_COOKIE in browsers[True][0].cookies
        unchanged = Unchanged.of(world)
        failures: list[str] = []
        routes = [route for page in PAGES for route in page.router.routes]
        for route in routes:
            assert isinstance(route, APIRoute)
            for method in sorted(route.methods or ()):
                if route.path in SKIPPED:
                    continue
                try:
                    fuzz(route, method, world, browsers, unchanged)
                except (Exception, BaseExceptionGroup) as error:  # every route's findings
                    failures.append(f"{method} {route.path}: {error}")
        assert not failures, "\n\n".join(failures)
