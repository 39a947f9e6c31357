"""Several real `crowdquant serve` processes on one database and one home: exactly one runs
the scheduler at a time, another takes over within the lease's time when it is killed, and
every process answers requests throughout, and one that stalls past its lease does not tick
when it wakes. Two `serve` processes on PostgreSQL; `serve --workers 2` on a SQLite file."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db import migrate
from crowdquant.db.lease import holder_of
from crowdquant.db.models import Cadence, Round, RoundStatus, Rules, Tournament
from crowdquant.db.models import Lease as LeaseRow
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.server import serve
from crowdquant.tournament.tournaments import create_tournament
from crowdquant.web.forms import CSRF_COOKIE

LEASE_SECONDS = 2.0
CROWDQUANT = str(Path(sys.executable).with_name("crowdquant"))
URL_LINE = re.compile(r'API_TOURNAMENT_URL = "(http://[^"]+)"')
ROUNDS_QUERY = {"query": "{ rounds(tournament: 8) { number } }"}
SIGN_INS = 3


@dataclass
class Serve:
    """One `crowdquant serve` process: its URL once it has said it, its log on stderr."""

    process: subprocess.Popen[str]
    log: Path
    urls: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self) -> str:
        wait_for(lambda: bool(self.urls) or self.process.poll() is not None, 60, "a URL")
        assert self.urls, f"serve exited {self.process.returncode}: {self.log.read_text()}"
        return self.urls[0]

    def said(self, text: str) -> bool:
        """Whether its log has `text` (a tick logs its events once all its steps are done)."""
        return text in self.log.read_text()

    def sign_in(self) -> int:
        """A wrong password's status: 401, or 429 past the sign-in limit."""
        form = {"csrf": "token", "username": "nobody", "password": "wrong"}
        response = httpx.post(
            f"{self.url()}login", data=form, cookies={CSRF_COOKIE: "token"}, timeout=60
        )
        return response.status_code

    def answers(self) -> bool:
        response = httpx.post(self.url(), json=ROUNDS_QUERY, timeout=60)  # while it starts
        return response.status_code == 200 and "errors" not in response.json()


def wait_for(condition: Callable[[], bool], seconds: float, what: str) -> float:
    """Poll `condition` until it holds; how long that took. Fails after `seconds`."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < seconds, f"no {what} within {seconds} s"
        time.sleep(0.05)
    return time.monotonic() - start


def _read_urls(stdout: IO[str], urls: list[str]) -> None:
    for line in stdout:
        if found := URL_LINE.search(line):
            urls.append(found[1])


@pytest.fixture
def start_serve(tmp_path: Path, database_url: str) -> Iterator[Callable[..., Serve]]:
    """Starts `crowdquant serve` processes on one home and `database_url`; kills what is left."""
    env = {
        **os.environ,
        "CROWDQUANT_HOME": str(tmp_path / "home"),
        "CROWDQUANT_DATABASE_URL": database_url,
        "CROWDQUANT_SECRET_KEY": "k" * 40,
        "CROWDQUANT_SCHEDULER_LEASE_SECONDS": str(LEASE_SECONDS),
        "CROWDQUANT_RATE_LIMIT_SIGN_IN": f"{SIGN_INS}/hour",
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
    }
    started: list[Serve] = []

    def start(*options: str) -> Serve:
        log = tmp_path / f"serve{len(started)}.log"
        process = subprocess.Popen(
            [CROWDQUANT, "serve", "--port", "0", "--tick-seconds", "0.2", *options],
            env=env,
            stdout=subprocess.PIPE,
            stderr=log.open("w"),
            text=True,
        )
        serve = Serve(process, log)
        assert process.stdout is not None
        threading.Thread(target=_read_urls, args=(process.stdout, serve.urls), daemon=True).start()
        started.append(serve)
        return serve

    try:
        yield start
    finally:
        for serve in started:
            if serve.process.poll() is None:
                serve.process.kill()
            serve.process.wait(timeout=30)


@pytest.fixture
def sessions(database_url: str) -> Iterator[sessionmaker[Session]]:
    """The database migrated, with tournament 8 (it has no dataset: rounds, no new ones)."""
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    sessions = session_factory(engine)
    with transaction(sessions) as session:
        create_tournament(session, _Wall(), 8, "classic", Rules.CLASSIC, Cadence.DAILY, "missing")
    yield sessions
    engine.dispose()


class _Wall:
    def now(self) -> datetime:
        return datetime.now(UTC)


def add_round(sessions: sessionmaker[Session], number: int, closes_in: float) -> None:
    """An open round of tournament 8 that closes `closes_in` seconds from now."""
    now = datetime.now(UTC)
    closes = now + timedelta(seconds=closes_in)
    with transaction(sessions) as session:
        tournament = session.scalars(select(Tournament).where(Tournament.number == 8)).one()
        session.add(
            Round(
                tournament_id=tournament.id,
                number=number,
                status=RoundStatus.OPEN,
                open_time=now - timedelta(hours=1),
                close_staking_time=closes,
                close_time=closes,
                resolve_time=None,
                live_era="0001",
                dataset_version="missing",
            )
        )


def status_of(sessions: sessionmaker[Session], number: int) -> RoundStatus:
    with transaction(sessions) as session:
        return session.scalars(select(Round.status).where(Round.number == number)).one()


def stall(serve: Serve, sessions: sessionmaker[Session]) -> None:
    """Stop `serve` (SIGSTOP) between two of its transactions on the lease (one stopped
    inside a step keeps the lease's row locked until it wakes)."""
    for _ in range(50):
        serve.process.send_signal(signal.SIGSTOP)
        try:
            with transaction(sessions) as session:
                session.execute(select(LeaseRow.name).with_for_update(nowait=True)).all()
            return
        except OperationalError:  # stopped holding the row: let it finish, try again
            serve.process.send_signal(signal.SIGCONT)
            time.sleep(0.05)
    raise AssertionError("the leader never stopped outside its transactions")


def leader(sessions: sessionmaker[Session]) -> int | None:
    """The process id of the lease's holder, if any."""
    holder = holder_of(sessions, "scheduler")
    return None if holder is None else int(holder.split(":")[1])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_one_of_two_serve_processes_ticks_and_another_takes_over_when_it_stalls_or_dies(
    sessions: sessionmaker[Session], start_serve: Callable[..., Serve]
) -> None:
    first, second = start_serve(), start_serve()
    assert first.answers() and second.answers()
    # one client's sign-ins are counted once across the processes
    assert [first.sign_in(), second.sign_in(), first.sign_in()] == [401] * SIGN_INS
    assert [second.sign_in(), first.sign_in()] == [429, 429]
    wait_for(lambda: leader(sessions) is not None, 30, "lease holder")
    by_pid = {first.pid: first, second.pid: second}
    holder = leader(sessions)
    assert holder in by_pid
    ticking, waiting = by_pid[holder], by_pid[next(pid for pid in by_pid if pid != holder)]

    add_round(sessions, 1, closes_in=0.5)
    wait_for(lambda: status_of(sessions, 1) is RoundStatus.SCORING, 15, "round 1 closed")
    wait_for(lambda: ticking.said("round 1 of tournament 8 closed"), 15, "its log")
    assert "round 1 of tournament 8" not in waiting.log.read_text()

    # the leader stalls (as in a long pause or a lost network): the other takes over once
    # its lease has expired, and keeps the rounds going
    stall(ticking, sessions)
    add_round(sessions, 2, closes_in=0.5)
    took = wait_for(lambda: leader(sessions) == waiting.pid, 4 * LEASE_SECONDS, "takeover")
    assert took <= LEASE_SECONDS * 4 / 3 + 1.0  # expiry, then the next look for the lease
    wait_for(lambda: status_of(sessions, 2) is RoundStatus.SCORING, 15, "round 2 closed")
    wait_for(lambda: waiting.said("round 2 of tournament 8 closed"), 15, "its log")
    assert waiting.answers()

    # the stalled one wakes up: it finds the lease lost and only answers requests
    ticking.process.send_signal(signal.SIGCONT)
    wait_for(lambda: ticking.said("lost the scheduler lease"), 15, "lease lost")
    add_round(sessions, 3, closes_in=0.2)
    wait_for(lambda: status_of(sessions, 3) is RoundStatus.SCORING, 15, "round 3 closed")
    wait_for(lambda: waiting.said("round 3 of tournament 8 closed"), 15, "its log")
    assert "round 2 of tournament 8" not in ticking.log.read_text()
    assert "round 3 of tournament 8" not in ticking.log.read_text()
    assert ticking.answers()

    # the new leader is killed mid-round: the first takes the lease back and closes it
    ticking, waiting = waiting, ticking
    add_round(sessions, 4, closes_in=1.0)
    ticking.process.send_signal(signal.SIGKILL)
    assert status_of(sessions, 4) is RoundStatus.OPEN
    ticking.process.wait(timeout=30)
    assert waiting.answers()
    wait_for(lambda: leader(sessions) == waiting.pid, 4 * LEASE_SECONDS, "takeover")
    wait_for(lambda: status_of(sessions, 4) is RoundStatus.SCORING, 15, "round 4 closed")
    wait_for(lambda: waiting.said("round 4 of tournament 8 closed"), 15, "its log")

    waiting.process.send_signal(signal.SIGTERM)  # a clean stop gives the lease up
    assert waiting.process.wait(timeout=30) == 0
    assert holder_of(sessions, "scheduler") is None


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_serve_with_workers_ticks_in_one_of_them(
    sessions: sessionmaker[Session], start_serve: Callable[..., Serve]
) -> None:
    parent = start_serve("--workers", "2")
    for _ in range(4):  # connections are spread over the workers; every one answers
        assert parent.answers()
    statuses = [parent.sign_in() for _ in range(SIGN_INS + 2)]
    assert statuses == [401] * SIGN_INS + [429, 429]  # counted once across the workers
    wait_for(lambda: leader(sessions) is not None, 30, "lease holder")
    assert leader(sessions) != parent.pid  # a worker holds it, not the supervising process
    add_round(sessions, 1, closes_in=0.2)
    wait_for(lambda: status_of(sessions, 1) is RoundStatus.SCORING, 15, "round 1 closed")
    wait_for(lambda: parent.said("round 1 of tournament 8 closed"), 15, "its log")
    assert parent.log.read_text().count("round 1 of tournament 8 closed") == 1

    parent.process.send_signal(signal.SIGTERM)
    assert parent.process.wait(timeout=60) == 0
    assert holder_of(sessions, "scheduler") is None


def _exit_at_once(*_args: object) -> None:
    raise SystemExit(3)


def test_a_worker_that_fails_as_it_starts_stops_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "_serve_worker", _exit_at_once)  # what the forked workers run
    workers = serve.Workers(count=2, listener=serve.listen("127.0.0.1", 0), host="127.0.0.1",
                            tick_seconds=60)  # fmt: skip
    with pytest.raises(serve.WorkerFailed, match="exit code 3"):
        workers.run()
    assert workers.listener.fileno() == -1  # closed
