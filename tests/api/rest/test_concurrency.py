"""Many participants at once, over real HTTP on each database: no request fails because
another one is running, and every accepted write is in the final state."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

import httpx

from crowdquant.clock import ManualClock
from crowdquant.db.models import ApiScope
from crowdquant.db.session import transaction
from crowdquant.ledger import stake, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.tournament.accounts import create_api_key, get_account
from crowdquant.tournament.staking import grant_nmr

from .helpers import RestWorld, predictions_csv

CLIENTS = 24


def _statuses(call: Callable[[], httpx.Response], count: int) -> list[int]:
    """`call()` from `count` threads at once; the status codes they got."""
    start = threading.Barrier(count)

    def one(_: int) -> int:
        start.wait()
        return call().status_code

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


@contextmanager
def ticking(clock: ManualClock) -> Iterator[None]:
    """The clock moves on by a microsecond every millisecond, as a real one would between
    requests, for the block."""
    stop = threading.Event()

    def tick() -> None:
        while not stop.wait(0.001):
            clock.advance(timedelta(microseconds=1))

    ticker = threading.Thread(target=tick)
    ticker.start()
    try:
        yield
    finally:
        stop.set()
        ticker.join()


def _graphql(world: RestWorld, token: str, query: str) -> httpx.Response:
    """A GraphQL request, answered 500 here if the body reports any error."""
    headers = {"Authorization": f"Token {token}"}
    answer = httpx.post(world.url + "/", json={"query": query}, headers=headers, timeout=60)
    if answer.status_code == 200 and "errors" in answer.json():
        return httpx.Response(500, json=answer.json())
    return answer


def test_parallel_reads_all_answer(world: RestWorld) -> None:
    with world.client("reader") as api, ticking(world.clock):
        statuses = _statuses(lambda: api.get("/account"), CLIENTS)
        statuses += _statuses(
            lambda: _graphql(world, world.tokens["reader"], "{ account { username } }"), CLIENTS
        )
    assert statuses == [200] * 2 * CLIENTS


def test_parallel_stake_increases_are_all_applied(world: RestWorld) -> None:
    ledger = SqlLedger(world.clock)
    with transaction(world.sessions) as session:
        ledger.genesis(session)
        alice = get_account(session, "alice")
        grant_nmr(session, ledger, alice, 100 * NMR_UNIT, "welcome-alice")
        token = create_api_key(session, world.clock, alice, "staker", [ApiScope.STAKE]).token
        alice_id = alice.id
    model_id = world.alice_model
    mutation = (
        f'mutation {{ v2ChangeStake(value: "1", type: "increase", modelId: "{model_id}",'
        " tournamentNumber: 8) { id } }"
    )
    headers = {"Authorization": f"Token {token}"}
    with (
        httpx.Client(base_url=world.url + "/api/v1", headers=headers, timeout=60) as api,
        ticking(world.clock),
    ):
        statuses = _statuses(
            lambda: api.post(
                f"/models/{model_id}/stake", json={"change": "increase", "amount": "1"}
            ),
            CLIENTS,
        )
        statuses += _statuses(lambda: _graphql(world, token, mutation), CLIENTS)
    assert statuses == [201] * CLIENTS + [200] * CLIENTS
    with transaction(world.sessions) as session:
        staked = ledger.balance(session, stake(uuid.UUID(model_id)), Currency.NMR)
        left = ledger.balance(session, wallet(alice_id), Currency.NMR)
    assert (staked, left) == (2 * CLIENTS * NMR_UNIT, (100 - 2 * CLIENTS) * NMR_UNIT)


def _trickle(
    first: bytes, rest: bytes, started: threading.Event, go: threading.Event
) -> Iterator[bytes]:
    """A body sent in two parts, the second only once `go` is set."""
    yield first
    started.set()
    go.wait(timeout=30)
    yield rest


def test_a_slow_upload_holds_no_one_else_up(world: RestWorld) -> None:
    boundary = "cq-boundary"
    body = (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="predictions.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + predictions_csv(world.live_ids)
        + f"\r\n--{boundary}--\r\n".encode()
    )
    started, go = threading.Event(), threading.Event()
    uploaded: list[httpx.Response] = []

    def upload() -> None:
        with world.client("uploader") as api:
            uploaded.append(
                api.post(
                    f"/models/{world.alice_model}/submissions",
                    content=_trickle(body[:100], body[100:], started, go),
                    headers={
                        "Content-Type": f"multipart/form-data; boundary={boundary}",
                        "Content-Length": str(len(body)),
                    },
                )
            )

    slow = threading.Thread(target=upload)
    slow.start()
    try:
        assert started.wait(timeout=10)
        time.sleep(0.2)  # the server is now receiving the slow body
        with world.client("bob") as api:
            answers = [api.get("/account") for _ in range(3)]
            answers += [
                api.post("/models", json={"tournament": 11, "name": f"bob_{i}"}) for i in range(3)
            ]
    finally:
        go.set()
        slow.join(timeout=60)
    assert [answer.status_code for answer in answers] == [200] * 3 + [201] * 3
    assert uploaded[0].status_code == 201, uploaded[0].text
