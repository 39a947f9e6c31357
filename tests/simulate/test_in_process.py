"""The simulator's in-process transport: the app's real routes without sockets, its blocking
work on worker threads kept from one request to the next."""

from __future__ import annotations

import itertools
import threading

import httpx
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
