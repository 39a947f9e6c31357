"""The simulator's in-process transport: the app's real routes without sockets, its blocking
work on worker threads kept from one request to the next."""

from __future__ import annotations

import itertools
import threading

import httpx
import pytest
from fastapi import FastAPI

from crowdquant.simulate.in_process import APP_URL, AppTransport


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


def test_a_failing_route_answers_500_and_the_next_request_is_served() -> None:
    app = FastAPI()

    @app.get("/fail")
    def fail() -> None:
        raise RuntimeError("the route broke")

    @app.get("/fine")
    async def fine() -> dict[str, str]:
        return {"answer": "fine"}

    transport = AppTransport(app)
    try:
        with httpx.Client(transport=transport, base_url=APP_URL) as client:
            failed = client.get("/fail")
            after = client.get("/fine")
    finally:
        transport.close()
    assert failed.status_code == 500
    assert after.status_code == 200 and after.json() == {"answer": "fine"}


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
