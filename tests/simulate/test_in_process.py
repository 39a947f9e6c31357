"""The simulator's in-process transport: the app's real routes without sockets, its blocking
work on worker threads kept from one request to the next."""

from __future__ import annotations

import itertools
import threading

import httpx
import numerapi.utils
import pytest
import requests
from fastapi import FastAPI, Request

from crowdquant.simulate.in_process import APP_URL, AppTransport, Call, requests_through


def _get(app: object, *paths: str) -> list[httpx.Response]:
    """Each of `paths` asked of `app` in turn, through one transport, closed after."""
    transport = AppTransport(app)
    try:
        with httpx.Client(transport=transport, base_url=APP_URL) as client:
            return [client.get(path) for path in paths]
    finally:
        transport.close()


def test_requests_are_answered_by_the_app_on_kept_worker_threads() -> None:
    app = FastAPI()
    numbers, seen = itertools.count(1), threading.local()  # a number for each thread

    @app.get("/thread")
    def thread() -> dict[str, int]:  # a sync route: run on a worker thread
        if not hasattr(seen, "number"):
            seen.number = next(numbers)
        return {"id": seen.number}

    transport = AppTransport(app)
    try:
        with httpx.Client(transport=transport, base_url=APP_URL) as client:
            answers = [client.get("/thread") for _ in range(3)]
            missing = client.get("/nowhere")
    finally:
        transport.close()
    assert [answer.status_code for answer in answers] == [200, 200, 200]
    workers = {answer.json()["id"] for answer in answers}
    assert len(workers) == 1  # one worker thread served them all, not one started for each
    assert not hasattr(seen, "number")  # not this thread
    assert missing.status_code == 404
    transport.close()  # closing again does nothing


def test_a_quoted_path_reaches_its_route_unquoted_with_its_raw_form_kept() -> None:
    app = FastAPI()

    @app.get("/files/{key:path}")
    async def file(key: str, request: Request) -> dict[str, str]:
        return {"key": key, "raw": request.scope["raw_path"].decode()}

    (answer,) = _get(app, "/files/a%20b/c")
    assert answer.json() == {"key": "a b/c", "raw": "/files/a%20b/c"}


def test_a_failing_route_answers_500_and_the_next_request_is_served() -> None:
    app = FastAPI()

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("the route broke")

    @app.get("/fine")
    async def fine() -> dict[str, str]:
        return {"answer": "fine"}

    failed, after = _get(app, "/fail", "/fine")
    assert failed.status_code == 500
    assert after.status_code == 200 and after.json() == {"answer": "fine"}


def test_a_request_that_cannot_be_made_is_refused_and_the_next_is_served() -> None:
    app = FastAPI()

    @app.get("/fine")
    async def fine() -> dict[str, str]:
        return {"answer": "fine"}

    transport = AppTransport(app)
    try:
        with pytest.raises(UnicodeEncodeError):  # a path a client would have quoted
            transport.answer(Call("GET", f"{APP_URL}/caf\u00e9", [], b""))
        with httpx.Client(transport=transport, base_url=APP_URL) as client:
            after = client.get("/fine")
    finally:
        transport.close()
    assert after.json() == {"answer": "fine"}


def test_an_app_failing_before_it_answers_answers_500() -> None:
    async def broken(scope: object, receive: object, send: object) -> None:
        raise RuntimeError("no answer")

    (answer,) = _get(broken, "/")
    assert answer.status_code == 500 and answer.content == b""


def test_requests_from_another_thread_are_answered_and_a_closed_transport_refuses() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(body: dict[str, int]) -> dict[str, int]:
        return {"twice": body["n"] * 2}

    transport = AppTransport(app)
    client = httpx.Client(transport=transport, base_url=APP_URL)
    answers: list[int] = []
    caller = threading.Thread(
        target=lambda: answers.append(client.post("/echo", json={"n": 4}).json()["twice"])
    )
    caller.start()
    caller.join()
    answers.append(client.post("/echo", json={"n": 5}).json()["twice"])
    transport.close()
    assert answers == [8, 10]
    with pytest.raises(RuntimeError, match="closed"):
        client.get("/echo")
    client.close()


def test_numerapi_requests_to_the_app_go_through_the_transport_for_the_block() -> None:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, object]:
        return {
            "body": (await request.body()).decode(),
            "host": request.headers.get("host"),
            "authorization": request.headers.get("authorization"),
            "query": request.url.query,
            "agent": request.headers.get("user-agent", "").split("/")[0],
            "unset": "x-compute-id" in request.headers,
            "client": request.client.host if request.client else None,
        }

    transport = AppTransport(app)
    try:
        with requests_through(transport):
            sent = numerapi.utils.requests.post(
                f"{APP_URL}/echo?page=2",
                json={"n": 1},
                headers={"Authorization": "Token a$b", "X-Compute-Id": None},  # as numerapi
            )
            with pytest.raises(TypeError, match="at once"):
                numerapi.utils.requests.put(f"{APP_URL}/echo", data=iter([b"a", b"b"]))
            with pytest.raises(TypeError, match="cookies"):  # never dropped unsent
                numerapi.utils.requests.get(f"{APP_URL}/echo", cookies={"a": "b"})
            missing = numerapi.utils.requests.get(f"{APP_URL}/nowhere")
        assert numerapi.utils.requests is requests  # as before, after the block
    finally:
        transport.close()
    assert sent.status_code == 200 and sent.reason == "OK"
    assert sent.json() == {
        "body": '{"n": 1}',
        "host": "crowdquant.simulation",
        "authorization": "Token a$b",
        "query": "page=2",
        "agent": "python-requests",  # requests' default headers, as a session sends them
        "unset": False,  # a header set to None is not sent
        "client": "127.0.0.1",
    }
    assert sent.headers["content-type"] == "application/json"
    assert missing.status_code == 404
    with pytest.raises(requests.HTTPError):
        missing.raise_for_status()
