"""The round window: a crowd of participants against a served app on loopback, at once.

    uv run python benchmarks/round_window.py        # 32 participants, SQLite then PostgreSQL
    uv run python benchmarks/round_window.py --participants 64 --seconds 30 --backends sqlite

The app (`create_app` on `bootstrap`'s database, storage, ledger and validation pool, as
`serve` builds them) runs in its own process under uvicorn; the participants are threads
of this one. Each participant, as fast as it can and over and over: asks for the round's
live file and downloads it, uploads a 6,000-row submission (validated against the live
ids), reads its account and its model's stake. Printed per backend: validated uploads per
second sustained, p50 and p99 latency per call, and the count of errors (any answer but
2xx, or no answer). The reference, measured in the same run by the same crowd against the
same server, is the rate of a call that does nothing (a small static file): the ratio is
uploads per second over reference calls per second. PostgreSQL is the tests' throwaway
server (see `tests/conftest.py`), or `--postgres-url`.
"""

from __future__ import annotations

import argparse
import importlib.util
import multiprocessing
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import uvicorn
from argon2 import PasswordHasher

from crowdquant.clock import ManualClock
from crowdquant.data.config import DatasetConfig
from crowdquant.data.feed import MarketFeed, SyntheticMovingMarket
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.db.models import ApiScope, Cadence, Rules
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.server.bootstrap import bootstrap
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament

ROOT = Path(__file__).resolve().parent.parent
ROWS = 6_000
NOW = datetime(2001, 1, 9, 12, 5, tzinfo=UTC)  # a Tuesday in the synthetic market's calendar
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
UNLIMITED = "1000000/second"
REFERENCE = "/static/site.css"
API = "/api/v1"


def prepare(settings: Settings, participants: int) -> tuple[list[tuple[str, str]], pd.Index]:
    """Tournament 8 with round 1 open on a 6,000-stock live era; one account, key and model
    per participant. Returns each participant's (token, model id) and the live ids."""
    clock = ManualClock(NOW)
    infra = bootstrap(settings, clock, genesis=True)
    market = SyntheticMovingMarket(SyntheticMarket(SyntheticConfig(n_stocks=ROWS, n_weeks=70)))
    feed = MarketFeed(market, OperatorKeys(bytes(range(32))), DatasetConfig(), has_volume=True)
    crowd: list[tuple[str, str]] = []
    try:
        with transaction(infra.sessions) as session:
            create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
            for i in range(participants):
                name = f"player_{i}"
                account = sign_up(
                    session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP
                )
                scopes = [ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE]
                token = create_api_key(session, clock, account, "bench", scopes).token
                crowd.append((token, str(create_model(session, clock, account, 8, name).id)))
        with transaction(infra.sessions) as session:
            publisher = FeedPublisher(feed, infra.storage)
            round_ = open_round(session, clock, get_tournament(session, 8), publisher)
            live_ids = live_ids_of_round(infra.storage, round_)
    finally:
        infra.close()
    return crowd, live_ids


def serve(settings: Settings, port: int) -> None:
    """The app on `port` until killed (the body of the server process)."""
    clock = ManualClock(NOW)
    infra = bootstrap(settings, clock, validation_pool=True)
    app = create_app(
        settings,
        clock=clock,
        sessions=infra.sessions,
        storage=infra.storage,
        ledger=infra.ledger,
        validator=infra.validator,
    )
    try:
        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
    finally:
        infra.close()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def served(settings: Settings) -> Iterator[str]:
    """The app served by a process of its own; yields its URL."""
    port = free_port()
    process = multiprocessing.get_context("spawn").Process(target=serve, args=(settings, port))
    process.start()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180  # the validation pool starts first
        while True:
            try:
                if httpx.get(url + REFERENCE).is_success:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or not process.is_alive():
                raise RuntimeError("the server did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.join(timeout=30)


class Tally:
    """Latencies per call and errors, shared by the participants' threads."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self._lock = threading.Lock()

    def call(self, name: str, send: Callable[[], httpx.Response]) -> httpx.Response | None:
        start = time.perf_counter()
        try:
            answer: httpx.Response | None = send()
        except httpx.HTTPError:
            answer = None
        elapsed = time.perf_counter() - start
        with self._lock:
            self.latencies[name].append(elapsed)
            if answer is None or not answer.is_success:
                self.errors[name] += 1
        return answer


def crowd_run(
    url: str, count: int, seconds: float, step: Callable[[httpx.Client, int], None]
) -> None:
    """`count` threads, each with its own client, calling `step` until `seconds` have passed."""
    deadline = time.monotonic() + seconds

    def participant(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            while time.monotonic() < deadline:
                step(client, i)

    threads = [threading.Thread(target=participant, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def round_window(
    url: str, crowd: list[tuple[str, str]], live_ids: pd.Index, seconds: float
) -> tuple[Tally, float]:
    """The participants' loop for `seconds`; the tally and the seconds it really took."""
    tally = Tally()
    values = np.random.default_rng(0).uniform(0.05, 0.95, len(live_ids))
    body = pd.DataFrame({"id": live_ids.astype(str), "prediction": values}).to_csv(index=False)

    def step(client: httpx.Client, i: int) -> None:
        token, model = crowd[i]
        auth = {"Authorization": f"Token {token}"}
        live = f"{API}/tournaments/8/rounds/1/datasets/live.parquet"
        link = tally.call("live link", lambda: client.get(live, headers=auth))
        if link is not None and link.is_success:
            tally.call("live file", lambda: client.get(link.json()["url"]))
        files = {"file": ("predictions.csv", body.encode(), "text/csv")}
        upload = f"{API}/models/{model}/submissions"
        tally.call("upload", lambda: client.post(upload, headers=auth, files=files))
        tally.call("account", lambda: client.get(f"{API}/account", headers=auth))
        tally.call("stake", lambda: client.get(f"{API}/models/{model}/stake", headers=auth))

    start = time.perf_counter()
    crowd_run(url, len(crowd), seconds, step)
    return tally, time.perf_counter() - start


def reference_rate(url: str, count: int, seconds: float) -> float:
    """Calls per second of the no-op call, by the same crowd."""
    tally = Tally()
    start = time.perf_counter()

    def step(client: httpx.Client, _: int) -> None:
        tally.call("no-op", lambda: client.get(REFERENCE))

    crowd_run(url, count, seconds, step)
    return len(tally.latencies["no-op"]) / (time.perf_counter() - start)


def report(backend: str, tally: Tally, elapsed: float, reference: float, participants: int) -> None:
    uploads = len(tally.latencies["upload"]) - tally.errors["upload"]
    rate = uploads / elapsed
    errors = sum(tally.errors.values())
    print(f"{backend}: {participants} participants, {elapsed:.1f} s")
    print(f"  validated uploads/s {rate:7.1f}   errors {errors}")
    print(
        f"  reference no-op calls/s {reference:7.1f}   ratio uploads/no-op {rate / reference:.3f}"
    )
    for name, latencies in tally.latencies.items():
        ordered = sorted(latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        print(
            f"  {name:10s} n={len(ordered):6d}  p50 {statistics.median(ordered) * 1000:7.1f} ms"
            f"  p99 {p99 * 1000:7.1f} ms  errors {tally.errors[name]}"
        )


def bench(backend: str, database_url: str | None, args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="crowdquant-bench-") as home:
        settings = Settings(
            mode="local",
            home=Path(home),
            database_url=database_url,
            # the whole crowd comes from one loopback address: measure the window, not the
            # per-address abuse limits
            rate_limit_upload=UNLIMITED,
        )
        crowd, live_ids = prepare(settings, args.participants)
        with served(settings) as url:
            reference = reference_rate(url, args.participants, args.reference_seconds)
            tally, elapsed = round_window(url, crowd, live_ids, args.seconds)
        report(backend, tally, elapsed, reference, args.participants)


@contextmanager
def postgres(url: str | None) -> Iterator[str]:
    """`url`, or a fresh database on the tests' throwaway PostgreSQL server."""
    if url is not None:
        yield url
        return
    spec = importlib.util.spec_from_file_location("fixtures", ROOT / "tests" / "conftest.py")
    assert spec is not None and spec.loader is not None
    fixtures = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fixtures  # its dataclasses look their module up
    spec.loader.exec_module(fixtures)
    pg_bin = fixtures._pg_bin()
    if pg_bin is None:
        raise SystemExit("no PostgreSQL binaries: install postgresql or pass --postgres-url")
    with fixtures._throwaway_server(pg_bin) as server, server.database() as database:
        yield database


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--participants", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--reference-seconds", type=float, default=5.0)
    parser.add_argument("--backends", nargs="+", default=["sqlite", "postgresql"])
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    for backend in args.backends:
        if backend == "sqlite":
            bench(backend, None, args)
        else:
            with postgres(args.postgres_url) as url:
                bench(backend, url, args)


if __name__ == "__main__":
    main()
