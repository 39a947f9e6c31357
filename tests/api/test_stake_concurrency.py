"""Concurrent stake changes from several clients, as threads against a running server on
PostgreSQL: participants fire numerapi and REST stake requests (some refused for lack of
funds) while the scheduler closes the round, freezing the stakes mid-storm, and later
resolves it. Afterwards no invariant is broken: the books audit sound, every accepted
request is in the journal once, refused ones changed nothing, every balance follows from
the accepted requests, and each frozen stake is the model's stake at the moment of the
close, reconstructed from the journal."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db import migrate
from crowdquant.db.models import RoundPayout, RoundStake, Rules, StakeChange, StakeChangeStatus
from crowdquant.db.models.ledger import LedgerPosting, LedgerTransaction
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.ledger import GENESIS, release, stake, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, Currency

from ..conftest import PostgresServer
from .staked_world import NMR, START, StakedWorld, TournamentSpec, staked_world

PLAYERS = ("ann", "ben", "cat", "dan", "eve", "fay")
GRANT = 100 * NMR
ANSWERS_PER_PHASE = 40  # answers before the close, between close and resolution, and after
MAX_STEPS = 200  # per client: a storm that never ends is a failure, not a hang
DEADLINE = 60.0  # seconds
CLOSING = "stakes are being frozen"  # a change between the round's close time and its close


class RecordingLedger(SqlLedger):
    """The scheduler's books: notes the journal's head each time a transition holds them.

    Closing a round freezes its stakes under the books' lock (`freeze_stakes` holds it), so
    the head seen right after taking the lock is the last transaction the frozen stakes can
    include: nothing is posted until the close commits."""

    def __init__(self, clock: ManualClock) -> None:
        super().__init__(clock)
        self.heads: list[int] = []

    def hold(self, session: Session) -> None:
        super().hold(session)
        self.heads.append(session.scalar(select(func.max(LedgerTransaction.sequence))) or 0)


@dataclass(frozen=True)
class Answer:
    """One request of the storm as its client saw it."""

    player: str
    via: str  # "numerapi" or "rest"
    kind: str  # "increase" or "decrease"
    amount: int | None  # accepted: what the answer says moved; refused: what was asked
    accepted: bool
    status: str | None = None  # accepted: done, released or pending
    change_id: uuid.UUID | None = None  # when the answer names it


class Storm:
    """The clients' answers, shared by the threads."""

    def __init__(self) -> None:
        self.answers: list[Answer] = []
        self.failures: list[BaseException] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, answer: Answer) -> None:
        with self.lock:
            self.answers.append(answer)

    def count(self) -> int:
        with self.lock:
            return len(self.answers)

    def wait_for(self, count: int) -> None:
        """Poll until `count` answers are in (or a client failed)."""
        deadline = time.monotonic() + DEADLINE
        while self.count() < count and not self.failures:
            assert time.monotonic() < deadline, f"only {self.count()} answers of {count}"
            time.sleep(0.01)
        assert not self.failures, repr(self.failures[0])


def units(value: Decimal | str) -> int:
    return int(Decimal(str(value)) * NMR)


def client(world: StakedWorld, storm: Storm, name: str, seed: int) -> None:
    """One participant's random mix of stake requests until the storm stops."""
    rng = random.Random(seed)
    model = str(world.model(name))
    napi = world.napi(name)
    with world.rest(name) as rest:
        for _ in range(MAX_STEPS):
            if storm.stop.is_set():
                return
            amount = Decimal(rng.randint(1, 2_500)) / 100  # up to 25 NMR, in cents
            action = rng.choice(["increase", "decrease", "drain", "rest", "rest", "greedy"])
            if action in ("increase", "decrease"):
                call = napi.stake_increase if action == "increase" else napi.stake_decrease
                try:
                    done = call(amount, model)
                except ValueError as refusal:
                    # not enough NMR, or the round's close time passed before its close
                    assert "holds" in str(refusal) or CLOSING in str(refusal), refusal
                    storm.add(Answer(name, "numerapi", action, units(amount), False))
                    continue
                moved = units(done["requestedAmount"])
                storm.add(Answer(name, "numerapi", action, moved, True, done["status"]))
            elif action == "drain":
                try:
                    done = napi.stake_drain(model)
                except ValueError as refusal:
                    assert "no stake to drain" in str(refusal) or CLOSING in str(refusal), refusal
                    storm.add(Answer(name, "numerapi", "decrease", None, False))
                    continue
                storm.add(
                    Answer(
                        name,
                        "numerapi",
                        "decrease",
                        units(done["requestedAmount"]),
                        True,
                        done["status"],
                        uuid.UUID(done["id"]),
                    )
                )
            else:  # REST; a greedy request asks for more than anyone holds
                kind = rng.choice(["increase", "decrease"])
                asked = Decimal(5_000) if action == "greedy" else amount
                answer = rest.post(
                    f"/models/{model}/stake", json={"change": kind, "amount": str(asked)}
                )
                if answer.status_code == 409:
                    code = answer.json()["detail"]["code"]
                    assert code in ("insufficient_funds", "round_closing"), answer.text
                    storm.add(Answer(name, "rest", kind, units(asked), False))
                    continue
                assert answer.status_code == 201, answer.text
                body = answer.json()
                assert action != "greedy", body
                storm.add(
                    Answer(
                        name,
                        "rest",
                        kind,
                        units(body["amount"]),
                        True,
                        body["status"],
                        uuid.UUID(body["id"]),
                    )
                )


@dataclass
class Stormed:
    world: StakedWorld
    books: RecordingLedger
    storm: Storm
    round_id: uuid.UUID
    close_head: int  # the journal's last transaction when the close froze the stakes


@pytest.fixture(scope="module")
def stormed(
    postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stormed]:
    """The storm, run once for the module's checks, on PostgreSQL (SQLite serialises every
    writer on its one database lock, so threads there test no concurrency): every
    participant submitted on time to round 1, then stakes in its own thread while the main
    thread closes the round and later resolves it."""
    with postgres_server.database() as url:
        migrate.upgrade(url)
        engine = make_engine(url)
        try:
            yield from _storm(session_factory(engine), tmp_path_factory.mktemp("storm"))
        finally:
            engine.dispose()


def _storm(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Stormed]:
    clock = ManualClock(START)
    books = RecordingLedger(clock)
    spec = TournamentSpec(8, Rules.CLASSIC, "v1")
    with staked_world(
        sessions,
        tmp_path,
        [spec],
        PLAYERS,
        GRANT,
        clock=clock,
        scheduler_ledger=books,
        scored=False,
    ) as world:
        number = world.open_round(8, resolve_after=timedelta(days=3))
        path = tmp_path / "live.parquet"
        world.napi(PLAYERS[0]).download_dataset("v1/live.parquet", str(path))
        live = pd.read_parquet(path)
        for k, name in enumerate(PLAYERS):
            values = np.random.default_rng(k).uniform(0, 1, len(live))
            predictions = pd.DataFrame({"id": live.index, "prediction": values})
            world.napi(name).upload_predictions(model_id=str(world.model(name)), df=predictions)

        storm = Storm()

        def run(index: int, name: str) -> None:
            try:
                client(world, storm, name, seed=index)
            except BaseException as exc:
                storm.failures.append(exc)

        threads = [threading.Thread(target=run, args=(k, name)) for k, name in enumerate(PLAYERS)]
        for thread in threads:
            thread.start()
        try:
            storm.wait_for(ANSWERS_PER_PHASE)
            assert f"round {number} of tournament 8 closed" in world.tick_at(
                START + timedelta(hours=2)
            )
            (close_head,) = books.heads  # the close's hold, the only one so far
            storm.wait_for(storm.count() + ANSWERS_PER_PHASE)
            assert f"round {number} of tournament 8 resolved" in world.tick_at(
                START + timedelta(days=3, minutes=1)
            )
            storm.wait_for(storm.count() + ANSWERS_PER_PHASE)
        finally:
            storm.stop.set()
            for thread in threads:
                thread.join(timeout=DEADLINE)
        assert not any(thread.is_alive() for thread in threads), "a client hung"
        assert not storm.failures, repr(storm.failures[0])
        with transaction(world.sessions) as session:
            round_id = session.scalars(select(RoundStake.round_id).limit(1)).one()
        yield Stormed(world, books, storm, round_id, close_head)


def accepted(stormed: Stormed) -> list[Answer]:
    return [answer for answer in stormed.storm.answers if answer.accepted]


def test_the_storm_mixed_accepted_and_refused_requests(stormed: Stormed) -> None:
    """The test exercised something: both kinds, both ways, accepted and refused."""
    seen = Counter((a.via, a.kind, a.accepted) for a in stormed.storm.answers)
    for via in ("numerapi", "rest"):
        for kind in ("increase", "decrease"):
            assert seen[(via, kind, True)] > 0, seen
    assert seen[("rest", "increase", False)] + seen[("rest", "decrease", False)] > 0, seen
    statuses = Counter(a.status for a in accepted(stormed) if a.kind == "decrease")
    assert statuses["pending"] > 0 and statuses["released"] > 0, statuses


def test_the_books_stay_sound_and_nothing_goes_negative(stormed: Stormed) -> None:
    world = stormed.world
    with transaction(world.sessions) as session:
        report = world.ledger.verify(session)
        balances = world.ledger.balances(session, Currency.NMR)
    assert report.sound, [str(problem) for problem in report.problems]
    assert {account: b for account, b in balances.items() if b < 0} == {GENESIS: -GENESIS_SUPPLY}
    assert sum(balances.values()) == 0  # conservation: the genesis is minus all the rest


def test_every_accepted_request_is_recorded_once_and_refused_ones_not_at_all(
    stormed: Stormed,
) -> None:
    world = stormed.world
    names = {world.model(name): name for name in PLAYERS}
    with transaction(world.sessions) as session:
        changes = session.scalars(select(StakeChange)).all()
        rows = {
            change.id: (names[change.model_id], change.kind.value, change.amount)
            for change in changes
        }
        keys = Counter(
            session.scalars(
                select(LedgerTransaction.event_key).where(
                    LedgerTransaction.event_key.like("stake:%")
                )
            )
        )
        pending = [change.id for change in changes if change.status is StakeChangeStatus.PENDING]
        journal = session.scalar(select(func.count()).select_from(LedgerTransaction))
    answered = accepted(stormed)
    assert len(rows) == len(answered)
    assert Counter(rows.values()) == Counter((a.player, a.kind, a.amount) for a in answered)
    for answer in answered:
        if answer.change_id is not None:
            assert rows[answer.change_id] == (answer.player, answer.kind, answer.amount)
    assert keys == Counter(f"stake:{change_id}" for change_id in rows)  # each exactly once
    assert pending == []  # the round resolved: every pending release was paid back
    # nothing else was written: the genesis, the grants, the accepted requests, and the
    # releases paid back at the resolution (the round paid and burned nothing)
    released_later = sum(answer.status == "pending" for answer in answered)
    assert journal == 1 + len(PLAYERS) + len(answered) + released_later


def test_every_balance_follows_from_the_accepted_requests(stormed: Stormed) -> None:
    """Stake = increases − decreases, wallet = grant − increases + decreases (all released
    by now), nothing left pending: refused requests moved nothing. The round resolved
    unscored, so it paid and burned nothing."""
    world = stormed.world
    staked: dict[str, int] = defaultdict(int)
    for answer in accepted(stormed):
        assert answer.amount is not None
        staked[answer.player] += answer.amount if answer.kind == "increase" else -answer.amount
    with transaction(world.sessions) as session:
        assert all(row.nmr == 0 for row in session.scalars(select(RoundPayout)))
    for name in PLAYERS:
        player = world.players[name]
        assert world.balance(stake(world.model(name))) == staked[name], name
        assert world.balance(release(world.model(name))) == 0, name
        assert world.balance(wallet(player.account_id)) == GRANT - staked[name], name


def test_each_frozen_stake_is_the_stake_at_the_close(stormed: Stormed) -> None:
    """The sum of the model's stake postings up to the close's place in the journal."""
    world = stormed.world
    with transaction(world.sessions) as session:
        at_close = {
            account: amount
            for account, amount in session.execute(
                select(LedgerPosting.account, func.sum(LedgerPosting.amount))
                .join(LedgerTransaction, LedgerTransaction.id == LedgerPosting.transaction_id)
                .where(
                    LedgerTransaction.sequence <= stormed.close_head,
                    LedgerPosting.account.like("stake:%"),
                )
                .group_by(LedgerPosting.account)
            )
        }
        frozen = {
            row.model_id: row.at_risk
            for row in session.scalars(
                select(RoundStake).where(RoundStake.round_id == stormed.round_id)
            )
        }
    expected = {
        world.model(name): int(at_close.get(str(stake(world.model(name))), 0)) for name in PLAYERS
    }
    assert frozen == {model: amount for model, amount in expected.items() if amount > 0}
    assert frozen  # someone had a stake at the close
    later = [a for a in accepted(stormed) if a.status == "pending"]
    assert later  # and stakes moved after it
