"""Several clients posting at once, as threads with their own connections, on both databases:
no invariant breaks, no posting is lost, no event is recorded twice, no balance is spent
twice."""

from __future__ import annotations

import random
import threading
import uuid
from collections import defaultdict
from collections.abc import Callable
from functools import partial

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.session import session_factory, transaction
from crowdquant.ledger import (
    BURNED,
    TREASURY,
    AccountId,
    InsufficientFunds,
    Posting,
    Transaction,
    release,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.sql import SqlLedger, serialised
from crowdquant.money import NMR_UNIT, Currency

THREADS = 4
POSTS_PER_THREAD = 12
NMR = Currency.NMR


def _in_threads(count: int, work: Callable[[int], None]) -> None:
    """`work(i)` in `count` threads started together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    failures: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait()
            work(index)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads), "a client hung"
    if failures:
        raise failures[0]


def _fund(sessions: sessionmaker[Session], ledger: SqlLedger, users: list[uuid.UUID]) -> None:
    with transaction(sessions) as session:
        ledger.genesis(session)
        for user in users:
            ledger.post(
                session, f"fund:{user}", NMR, transfer(TREASURY, wallet(user), 100 * NMR_UNIT)
            )


def test_concurrent_stake_changes_keep_every_invariant_and_lose_nothing(
    sessions: sessionmaker[Session], ledger: SqlLedger
) -> None:
    users = [uuid.uuid4() for _ in range(3)]
    models = [uuid.uuid4() for _ in range(3)]  # model i belongs to user i
    _fund(sessions, ledger, users)
    accepted: list[Transaction] = []
    refused: list[str] = []
    lock = threading.Lock()

    def moves(rng: random.Random) -> tuple[Posting, ...]:
        i = rng.randrange(len(users))
        user, model = wallet(users[i]), models[i]
        source, target = rng.choice(
            [
                (user, stake(model)),
                (stake(model), release(model)),
                (release(model), user),
                (stake(model), BURNED),
                (TREASURY, stake(model)),
                (user, wallet(users[(i + 1) % len(users)])),
            ]
        )
        return transfer(source, target, rng.randint(1, 60) * NMR_UNIT)

    def client(index: int) -> None:
        rng = random.Random(index)
        for step in range(POSTS_PER_THREAD):
            key, postings = f"client:{index}:{step}", moves(rng)
            try:
                posted = serialised(
                    sessions, partial(ledger.post, event_key=key, currency=NMR, postings=postings)
                )
            except InsufficientFunds:
                with lock:
                    refused.append(key)
                continue
            with lock:
                accepted.append(posted)

    _in_threads(THREADS, client)

    assert len(accepted) + len(refused) == THREADS * POSTS_PER_THREAD
    assert len(accepted) > THREADS  # the test exercised something
    expected: dict[AccountId, int] = defaultdict(int)
    with transaction(sessions) as session:
        report = ledger.verify(session)
        for posted in accepted:
            assert ledger.find(session, posted.event_key) == posted  # nothing lost or altered
        for key in refused:
            assert ledger.find(session, key) is None
        for posted in [ledger.find(session, "genesis"), *accepted]:
            assert posted is not None
        balances = ledger.balances(session, NMR)
        for user in users:
            recorded = ledger.find(session, f"fund:{user}")
            assert recorded is not None
            accepted.append(recorded)
    for posted in accepted:
        for posting in posted.postings:
            expected[posting.account] += posting.amount
    assert report.sound, [str(p) for p in report.problems]
    assert report.transactions == 1 + len(accepted)  # the genesis, the funding, the accepted
    assert sorted(p.sequence for p in accepted) == list(range(2, 2 + len(accepted)))
    for account, amount in expected.items():
        assert balances[account] == amount + (0 if account != TREASURY else report.minted)


def test_a_balance_raced_for_by_every_client_is_spent_once(
    sessions: sessionmaker[Session], ledger: SqlLedger
) -> None:
    user, models = uuid.uuid4(), [uuid.uuid4() for _ in range(THREADS)]
    _fund(sessions, ledger, [user])
    outcomes: list[str] = []

    def client(index: int) -> None:
        postings = transfer(wallet(user), stake(models[index]), 100 * NMR_UNIT)
        try:
            serialised(
                sessions, lambda session: ledger.post(session, f"stake:{index}", NMR, postings)
            )
        except InsufficientFunds:
            outcomes.append("refused")
        else:
            outcomes.append("staked")

    _in_threads(THREADS, client)

    assert sorted(outcomes) == ["refused"] * (THREADS - 1) + ["staked"]
    with transaction(sessions) as session:
        assert ledger.balance(session, wallet(user), NMR) == 0
        assert sum(ledger.balance(session, stake(m), NMR) for m in models) == 100 * NMR_UNIT
        assert ledger.verify(session).sound


def test_one_event_posted_by_every_client_at_once_is_recorded_once(
    sessions: sessionmaker[Session], ledger: SqlLedger
) -> None:
    user, model = uuid.uuid4(), uuid.uuid4()
    _fund(sessions, ledger, [user])
    seen: list[Transaction] = []

    def client(index: int) -> None:
        postings = transfer(wallet(user), stake(model), 10 * NMR_UNIT)
        seen.append(
            serialised(sessions, lambda session: ledger.post(session, "stake:once", NMR, postings))
        )

    _in_threads(THREADS, client)

    assert len(seen) == THREADS and all(posted == seen[0] for posted in seen)
    with transaction(sessions) as session:
        assert ledger.balance(session, stake(model), NMR) == 10 * NMR_UNIT
        report = ledger.verify(session)
    assert report.sound and report.transactions == 3


def test_under_serializable_isolation_conflicts_are_retried_and_nothing_breaks(
    engine: Engine, ledger: SqlLedger
) -> None:
    """Stricter isolation than the default: PostgreSQL answers some posts with serialization
    failures (the snapshot predates the ledger's lock), and `serialised` runs them again."""
    sessions = session_factory(engine.execution_options(isolation_level="SERIALIZABLE"))
    users = [uuid.uuid4() for _ in range(3)]
    with transaction(sessions) as session:
        ledger.genesis(session)

    def client(index: int) -> None:
        for step in range(POSTS_PER_THREAD):
            postings = transfer(TREASURY, wallet(users[step % len(users)]), NMR_UNIT)
            post = partial(
                ledger.post, event_key=f"{index}:{step}", currency=NMR, postings=postings
            )
            serialised(sessions, post, attempts=30)

    _in_threads(THREADS, client)

    with transaction(sessions) as session:
        report = ledger.verify(session)
        funded = sum(ledger.balance(session, wallet(user), NMR) for user in users)
    assert report.sound, [str(p) for p in report.problems]
    assert report.transactions == 1 + THREADS * POSTS_PER_THREAD
    assert funded == THREADS * POSTS_PER_THREAD * NMR_UNIT
