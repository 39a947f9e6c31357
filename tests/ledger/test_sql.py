"""The database backend on SQLite and PostgreSQL: every rule and refusal, idempotency,
tamper evidence, the projection and its rebuild."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import Callable
from datetime import timedelta
from unittest import mock

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.session import is_busy, transaction
from crowdquant.ledger import (
    BURNED,
    GENESIS,
    OPERATOR_FUNDING,
    TREASURY,
    IdempotencyConflict,
    InsufficientFunds,
    InvalidPosting,
    LedgerError,
    LedgerTampered,
    MintingRefused,
    NewTransaction,
    NoGenesis,
    Posting,
    Transaction,
    Unbalanced,
    prize_pool,
    release,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.chain import GENESIS_PREVIOUS_HASH
from crowdquant.ledger.sql import SqlLedger, serialised
from crowdquant.money import GENESIS_SUPPLY, NMR_UNIT, Currency

from .conftest import START, TickingClock, snapshot, tamper

ALICE, BOB = uuid.uuid4(), uuid.uuid4()
MODEL = uuid.uuid4()
TOURNAMENT = uuid.uuid4()
NMR = NMR_UNIT


def _post(
    sessions: sessionmaker[Session],
    ledger: SqlLedger,
    key: str,
    postings: tuple[Posting, ...] | list[Posting],
    currency: Currency = Currency.NMR,
) -> Transaction:
    with transaction(sessions) as session:
        return ledger.post(session, key, currency, postings, memo=f"memo of {key}")


def _books(sessions: sessionmaker[Session], ledger: SqlLedger) -> SqlLedger:
    """Deposit 100 NMR to Alice, stake 60, unstake 10, burn 2, fund a prize pool with $500."""
    _post(sessions, ledger, "deposit", transfer(TREASURY, wallet(ALICE), 100 * NMR))
    _post(sessions, ledger, "stake", transfer(wallet(ALICE), stake(MODEL), 60 * NMR))
    _post(sessions, ledger, "unstake", transfer(stake(MODEL), release(MODEL), 10 * NMR))
    _post(sessions, ledger, "burn", transfer(stake(MODEL), BURNED, 2 * NMR))
    _post(
        sessions,
        ledger,
        "fund",
        transfer(OPERATOR_FUNDING, prize_pool(TOURNAMENT), 500_00),
        Currency.USD,
    )
    return ledger


def _verdict(sessions: sessionmaker[Session], ledger: SqlLedger) -> list[str]:
    with transaction(sessions) as session:
        return [f"{p.kind}: {p.message}" for p in ledger.verify(session).problems]


# --- the genesis ---------------------------------------------------------------------------------


def test_genesis_mints_the_fixed_supply_into_the_treasury_once(
    sessions: sessionmaker[Session], ledger: SqlLedger
) -> None:
    with transaction(sessions) as session:
        first = ledger.genesis(session)
    with transaction(sessions) as session:
        again = ledger.genesis(session)
        assert ledger.balance(session, TREASURY, Currency.NMR) == GENESIS_SUPPLY
        assert ledger.balance(session, GENESIS, Currency.NMR) == -GENESIS_SUPPLY
        report = ledger.verify(session)
    assert again == first
    assert (first.sequence, first.event_key, first.previous_hash) == (
        1,
        "genesis",
        GENESIS_PREVIOUS_HASH,
    )
    assert first.postings == (Posting(GENESIS, -GENESIS_SUPPLY), Posting(TREASURY, GENESIS_SUPPLY))
    assert report.sound and report.transactions == 1
    assert report.circulating == report.minted == GENESIS_SUPPLY


def test_nothing_is_posted_before_the_genesis(
    sessions: sessionmaker[Session], ledger: SqlLedger
) -> None:
    with pytest.raises(NoGenesis, match="crowdquant ledger genesis"):
        _post(sessions, ledger, "fund", transfer(OPERATOR_FUNDING, wallet(ALICE), 1), Currency.USD)
    assert snapshot(sessions) == ([], [], [])
    with transaction(sessions) as session:
        assert ledger.verify(session).sound  # empty books


def test_a_rewritten_genesis_is_refused(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    tamper(
        sessions, "UPDATE ledger_postings SET amount = :amount WHERE account = 'treasury'", amount=1
    )
    with (
        pytest.raises(LedgerTampered, match="not the fixed supply"),
        transaction(sessions) as session,
    ):
        started.genesis(session)


# --- posting -------------------------------------------------------------------------------------


def test_a_post_moves_balances_extends_the_chain_and_shows_in_history(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    with transaction(sessions) as session:
        genesis = started.genesis(session)
    deposit = _post(sessions, started, "deposit", transfer(TREASURY, wallet(ALICE), 100 * NMR))
    staked = _post(sessions, started, "stake", transfer(wallet(ALICE), stake(MODEL), 60 * NMR))
    assert (deposit.sequence, deposit.previous_hash) == (2, genesis.hash)
    assert (staked.sequence, staked.previous_hash) == (3, deposit.hash)
    assert staked.amount(wallet(ALICE)) == -60 * NMR and staked.memo == "memo of stake"
    with transaction(sessions) as session:
        assert started.find(session, "stake") == staked
        assert started.find(session, "nothing") is None
        assert started.balance(session, wallet(ALICE), Currency.NMR) == 40 * NMR
        assert started.balance(session, wallet(ALICE), Currency.USD) == 0
        assert started.balance(session, stake(BOB), Currency.NMR) == 0
        assert started.balances(session, Currency.NMR) == {
            GENESIS: -GENESIS_SUPPLY,
            TREASURY: GENESIS_SUPPLY - 100 * NMR,
            wallet(ALICE): 40 * NMR,
            stake(MODEL): 60 * NMR,
        }
        history = started.history(session, wallet(ALICE))
    assert [(e.sequence, e.event_key, e.amount, e.balance) for e in history] == [
        (2, "deposit", 100 * NMR, 100 * NMR),
        (3, "stake", -60 * NMR, 40 * NMR),
    ]
    assert history[1].created_at == staked.created_at


def test_usd_comes_from_operator_funding_which_alone_goes_negative(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    pool = prize_pool(TOURNAMENT)
    _post(sessions, started, "fund", transfer(OPERATOR_FUNDING, pool, 1_000_00), Currency.USD)
    _post(sessions, started, "prize:alice", transfer(pool, wallet(ALICE), 250_00), Currency.USD)
    with pytest.raises(InsufficientFunds, match=r"750\.00 USD"):
        _post(sessions, started, "prize:bob", transfer(pool, wallet(BOB), 750_01), Currency.USD)
    with transaction(sessions) as session:
        assert started.balances(session, Currency.USD) == {
            OPERATOR_FUNDING: -1_000_00,
            pool: 750_00,
            wallet(ALICE): 250_00,
        }
        assert [e.currency for e in started.history(session, wallet(ALICE))] == [Currency.USD]
        assert started.history(session, wallet(ALICE), Currency.NMR) == []
        report = started.verify(session)
    assert report.sound and report.usd_funded == 1_000_00


def test_an_account_can_be_emptied_exactly(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    _post(sessions, started, "all", transfer(stake(MODEL), release(MODEL), 48 * NMR))
    with transaction(sessions) as session:
        assert started.balance(session, stake(MODEL), Currency.NMR) == 0
        assert started.verify(session).sound


REFUSALS: dict[str, tuple[type[LedgerError], Callable[[], tuple[str, Currency, list[Posting]]]]] = {
    "overdraft": (
        InsufficientFunds,
        lambda: ("k", Currency.NMR, list(transfer(wallet(ALICE), stake(MODEL), 41 * NMR))),
    ),
    "overdraft of the treasury": (
        InsufficientFunds,
        lambda: ("k", Currency.NMR, list(transfer(TREASURY, wallet(BOB), GENESIS_SUPPLY))),
    ),
    "unbalanced": (Unbalanced, lambda: ("k", Currency.NMR, [Posting(wallet(ALICE), 1)])),
    "minting": (
        MintingRefused,
        lambda: ("k", Currency.NMR, list(transfer(GENESIS, wallet(BOB), 1))),
    ),
    "unburning": (
        MintingRefused,
        lambda: ("k", Currency.NMR, list(transfer(BURNED, wallet(BOB), 1))),
    ),
    "genesis key": (
        MintingRefused,
        lambda: ("genesis", Currency.NMR, list(transfer(TREASURY, wallet(BOB), 1))),
    ),
    "wrong currency": (
        InvalidPosting,
        lambda: ("k", Currency.USD, list(transfer(TREASURY, wallet(BOB), 1))),
    ),
    "zero": (InvalidPosting, lambda: ("k", Currency.NMR, [Posting(wallet(ALICE), 0)])),
    "a float": (
        InvalidPosting,
        lambda: ("k", Currency.NMR, [Posting(TREASURY, -0.5), Posting(wallet(BOB), 0.5)]),
    ),  # type: ignore[arg-type]
    "a used key, other postings": (
        IdempotencyConflict,
        lambda: ("stake", Currency.NMR, list(transfer(wallet(ALICE), stake(MODEL), 61 * NMR))),
    ),
    "a used key, other currency": (
        IdempotencyConflict,
        lambda: ("fund", Currency.NMR, list(transfer(TREASURY, wallet(ALICE), 500_00))),
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refusal_changes_nothing_even_in_a_transaction_that_goes_on(
    case: str, sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _post(sessions, started, "deposit", transfer(TREASURY, wallet(ALICE), 100 * NMR))
    _post(sessions, started, "stake", transfer(wallet(ALICE), stake(MODEL), 60 * NMR))
    _post(
        sessions,
        started,
        "fund",
        transfer(OPERATOR_FUNDING, prize_pool(TOURNAMENT), 1),
        Currency.USD,
    )
    before = snapshot(sessions)
    error, arguments = REFUSALS[case]
    event_key, currency, postings = arguments()
    with transaction(sessions) as session:
        with pytest.raises(error) as refused:
            started.post(session, event_key, currency, postings)
        assert refused.value.code == error.code and refused.value.message
        # the caller's transaction is still usable and commits
        assert started.balance(session, wallet(ALICE), Currency.NMR) == 40 * NMR
    assert snapshot(sessions) == before
    assert _verdict(sessions, started) == []


def test_the_same_event_again_returns_the_recorded_transaction_and_changes_nothing(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _post(sessions, started, "deposit", transfer(TREASURY, wallet(ALICE), 100 * NMR))
    first = _post(sessions, started, "stake", transfer(wallet(ALICE), stake(MODEL), 60 * NMR))
    before = snapshot(sessions)
    again = _post(sessions, started, "stake", transfer(wallet(ALICE), stake(MODEL), 60 * NMR))
    split = _post(
        sessions,
        started,
        "stake",
        [
            Posting(stake(MODEL), 20 * NMR),
            Posting(wallet(ALICE), -60 * NMR),
            Posting(stake(MODEL), 40 * NMR),
        ],
    )
    assert again == split == first
    assert snapshot(sessions) == before


def test_a_crash_inside_the_callers_transaction_leaves_nothing(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    before = snapshot(sessions)
    with pytest.raises(RuntimeError, match="crash"), transaction(sessions) as session:
        started.post(session, "deposit", Currency.NMR, transfer(TREASURY, wallet(ALICE), NMR))
        started.post(session, "stake", Currency.NMR, transfer(wallet(ALICE), stake(MODEL), NMR))
        raise RuntimeError("crash between two steps")
    assert snapshot(sessions) == before


def test_a_crash_inside_a_post_after_the_journal_rows_leaves_nothing(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    before = snapshot(sessions)
    crash = RuntimeError("crash before the projection is written")
    with (
        mock.patch.object(SqlLedger, "_write_balances", side_effect=crash),
        pytest.raises(RuntimeError, match="projection"),
        transaction(sessions) as session,
    ):
        started.post(session, "deposit", Currency.NMR, transfer(TREASURY, wallet(ALICE), NMR))
    assert snapshot(sessions) == before
    _post(sessions, started, "deposit", transfer(TREASURY, wallet(ALICE), NMR))  # then it works
    assert _verdict(sessions, started) == []


def test_balance_of_an_account_that_cannot_hold_the_currency_is_refused(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    with pytest.raises(InvalidPosting, match="cannot hold USD"), transaction(sessions) as session:
        started.balance(session, stake(MODEL), Currency.USD)


def test_balances_of_several_accounts_read_at_once_match_each_balance(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    accounts = [wallet(ALICE), stake(MODEL), release(MODEL), stake(BOB), BURNED]
    with transaction(sessions) as session:
        found = started.balances_of(session, accounts, Currency.NMR)
        assert found == {a: started.balance(session, a, Currency.NMR) for a in accounts}
        assert found[stake(MODEL)] == 48 * NMR and found[stake(BOB)] == 0
        assert started.balances_of(session, [], Currency.NMR) == {}
    with pytest.raises(InvalidPosting, match="cannot hold USD"), transaction(sessions) as session:
        started.balances_of(session, [wallet(ALICE), stake(MODEL)], Currency.USD)


# --- several events at once ----------------------------------------------------------------------


def _batch() -> list[NewTransaction]:
    """Events in the order a resolution posts them: NMR and USD interleaved, accounts that
    never moved before, one account moved twice, and one event already recorded."""
    return [
        NewTransaction("pay:1", Currency.NMR, transfer(TREASURY, stake(MODEL), 5 * NMR), "p1"),
        NewTransaction("usd:1", Currency.USD, transfer(prize_pool(TOURNAMENT), wallet(BOB), 7)),
        NewTransaction(
            "pay:2",
            Currency.NMR,
            (*transfer(stake(MODEL), BURNED, 3 * NMR), *transfer(release(MODEL), BURNED, NMR)),
            "p2",
        ),
        NewTransaction("stake", Currency.NMR, transfer(wallet(ALICE), stake(MODEL), 60 * NMR)),
        NewTransaction("pay:3", Currency.NMR, transfer(TREASURY, wallet(BOB), 2 * NMR), "p3"),
    ]


def _rows_in(session: Session) -> list[list[tuple[object, ...]]]:
    """Every ledger row as the session sees it (created times and hashes included)."""
    queries = [
        "SELECT sequence, event_key, currency, memo, created_at, previous_hash, hash"
        " FROM ledger_transactions ORDER BY sequence",
        "SELECT t.sequence, p.account, p.amount FROM ledger_postings p"
        " JOIN ledger_transactions t ON t.id = p.transaction_id ORDER BY t.sequence, p.account",
        "SELECT account, currency, balance, last_sequence FROM ledger_balances"
        " ORDER BY account, currency",
    ]
    return [[tuple(row) for row in session.execute(text(query))] for query in queries]


def test_post_many_writes_exactly_what_the_same_posts_one_by_one_write(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    written: list[list[list[tuple[object, ...]]]] = []
    answers: list[list[Transaction]] = []
    for together in (False, True):
        ledger = SqlLedger(TickingClock(START + timedelta(days=1)))  # both read the same times
        with sessions() as session:
            if together:
                answers.append(ledger.post_many(session, _batch()))
            else:
                answers.append(
                    [
                        ledger.post(
                            session, new.event_key, new.currency, new.postings, memo=new.memo
                        )
                        for new in _batch()
                    ]
                )
            written.append(_rows_in(session))
            session.rollback()
    assert written[0] == written[1]
    assert answers[0] == answers[1]
    assert [t.event_key for t in answers[1]] == [n.event_key for n in _batch()]
    assert answers[1][3].sequence < answers[1][0].sequence  # "stake" was recorded before
    with transaction(sessions) as session:
        assert ledger.post_many(session, []) == []
        ledger.post_many(session, _batch())
    assert _verdict(sessions, ledger) == []
    with transaction(sessions) as session:
        assert ledger.balance(session, stake(MODEL), Currency.NMR) == 50 * NMR
    again = snapshot(sessions)
    with transaction(sessions) as session:
        assert [t.event_key for t in ledger.post_many(session, _batch())] == [
            n.event_key for n in _batch()
        ]
    assert snapshot(sessions) == again  # every event recorded: nothing changes


@pytest.mark.parametrize("case", ["overdraft later in the batch", "conflicting repeat"])
def test_post_many_writes_nothing_when_one_event_is_refused(
    case: str, sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    before = snapshot(sessions)
    batch = _batch()
    if case == "overdraft later in the batch":  # the stake holds 48 + 5 − 3 NMR by then
        bad = NewTransaction("pay:4", Currency.NMR, transfer(stake(MODEL), BURNED, 51 * NMR))
        error: type[LedgerError] = InsufficientFunds
    else:
        bad = NewTransaction("pay:1", Currency.NMR, transfer(TREASURY, stake(MODEL), 6 * NMR))
        error = IdempotencyConflict
    with transaction(sessions) as session:
        with pytest.raises(error):
            started.post_many(session, [*batch, bad])
        assert started.balance(session, stake(MODEL), Currency.NMR) == 48 * NMR
    assert snapshot(sessions) == before


# --- tampering -----------------------------------------------------------------------------------


def _sequence_of(sessions: sessionmaker[Session], key: str) -> int:
    with transaction(sessions) as session:
        found = session.execute(
            text("SELECT sequence FROM ledger_transactions WHERE event_key = :key"), {"key": key}
        ).scalar_one()
        return int(found)


IN_STAKE = "transaction_id = (SELECT id FROM ledger_transactions WHERE event_key = 'stake')"


def test_a_rewritten_amount_is_found(sessions: sessionmaker[Session], started: SqlLedger) -> None:
    _books(sessions, started)
    changed = tamper(
        sessions,
        f"UPDATE ledger_postings SET amount = :amount WHERE account = :account AND {IN_STAKE}",
        amount=61 * NMR,
        account=str(stake(MODEL)),
    )
    assert changed == 1
    problems = _verdict(sessions, started)
    stake_sequence = _sequence_of(sessions, "stake")
    assert any(p.startswith(f"hash: transaction {stake_sequence} (stake)") for p in problems)
    assert any(p.startswith(f"unbalanced: transaction {stake_sequence}") for p in problems)
    assert any(p.startswith(f"projection: stake:{MODEL} holds 48 NMR") for p in problems)


def test_a_posting_moved_to_another_account_is_found(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    tamper(
        sessions,
        f"UPDATE ledger_postings SET account = :other WHERE account = :account AND {IN_STAKE}",
        other=str(wallet(BOB)),
        account=str(wallet(ALICE)),
    )
    problems = _verdict(sessions, started)
    stake_sequence = _sequence_of(sessions, "stake")
    assert any(p.startswith(f"hash: transaction {stake_sequence} (stake)") for p in problems)
    # Bob paid for a stake from a wallet he never filled
    assert any(p.startswith(f"negative: transaction {stake_sequence}") for p in problems)


def test_swapped_transactions_break_the_chain(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    tamper(sessions, "UPDATE ledger_transactions SET sequence = -1 WHERE sequence = 3")
    tamper(sessions, "UPDATE ledger_transactions SET sequence = 3 WHERE sequence = 4")
    tamper(sessions, "UPDATE ledger_transactions SET sequence = 4 WHERE sequence = -1")
    problems = _verdict(sessions, started)
    assert any(p.startswith("chain: transaction 3") for p in problems), problems
    assert any(p.startswith("hash: transaction 3") for p in problems), problems


def test_a_removed_transaction_breaks_the_chain(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    with transaction(sessions) as session:
        removed = session.execute(
            text("SELECT id FROM ledger_transactions WHERE event_key = 'unstake'")
        ).scalar_one()
    tamper(sessions, "DELETE FROM ledger_postings WHERE transaction_id = :id", id=removed)
    tamper(sessions, "DELETE FROM ledger_transactions WHERE id = :id", id=removed)
    problems = _verdict(sessions, started)
    assert any("where 4 was expected" in p for p in problems), problems
    assert any(p.startswith("projection:") for p in problems), problems


def test_postings_left_behind_by_a_removed_transaction_are_found(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    delete = "DELETE FROM ledger_transactions WHERE event_key = 'unstake'"
    bind = sessions.kw["bind"]
    if bind.dialect.name == "sqlite":  # plain sqlite3 does not enforce foreign keys
        with sqlite3.connect(bind.url.database) as db:
            db.execute(delete)
    else:  # nor does PostgreSQL for a superuser replaying as a replica
        with transaction(sessions) as session:
            session.execute(text("SET LOCAL session_replication_role = replica"))
            session.execute(text(delete))
    problems = _verdict(sessions, started)
    assert "chain: 2 postings belong to no transaction: a transaction was removed" in problems
    assert any("where 4 was expected" in p for p in problems), problems


def test_a_rewritten_memo_is_found(sessions: sessionmaker[Session], started: SqlLedger) -> None:
    _books(sessions, started)
    tamper(
        sessions, "UPDATE ledger_transactions SET memo = 'nothing to see' WHERE event_key = 'burn'"
    )
    problems = _verdict(sessions, started)
    assert [p.split(":")[0] for p in problems] == ["hash"]


def test_nothing_is_posted_on_a_tampered_head(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    tamper(
        sessions,
        "UPDATE ledger_postings SET amount = :amount WHERE account = 'operator_funding'",
        amount=-1,
    )
    before = snapshot(sessions)
    with pytest.raises(LedgerTampered, match="does not match its hash"):
        _post(sessions, started, "more", transfer(TREASURY, wallet(BOB), NMR))
    assert snapshot(sessions) == before


# --- the projection ------------------------------------------------------------------------------


def test_a_tampered_balance_is_found_and_the_rebuild_restores_it(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    journal_before, postings_before, balances_before = snapshot(sessions)
    tamper(
        sessions,
        "UPDATE ledger_balances SET balance = :balance WHERE account = :account",
        balance=1_000 * NMR,
        account=str(wallet(ALICE)),
    )
    tamper(sessions, "DELETE FROM ledger_balances WHERE account = 'burned'")
    problems = _verdict(sessions, started)
    assert sum(p.startswith("projection:") for p in problems) == 2, problems
    assert any(p.startswith("conservation:") for p in problems), problems

    with transaction(sessions) as session:
        corrected = started.rebuild_projection(session)
    assert corrected == 2
    assert snapshot(sessions) == (journal_before, postings_before, balances_before)
    assert _verdict(sessions, started) == []


def test_the_projection_rebuilt_from_the_journal_equals_the_one_kept_by_posting(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    with transaction(sessions) as session:  # posts and a rebuild in one session
        started.post(session, "more", Currency.NMR, transfer(TREASURY, wallet(BOB), NMR))
        assert started.rebuild_projection(session) == 0
        started.post(session, "more again", Currency.NMR, transfer(wallet(BOB), stake(MODEL), NMR))
        assert started.balance(session, wallet(BOB), Currency.NMR) == 0
    before = snapshot(sessions)
    with transaction(sessions) as session:
        assert started.rebuild_projection(session) == 0
    assert snapshot(sessions) == before
    assert _verdict(sessions, started) == []


def test_the_rebuild_refuses_a_tampered_journal(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    _books(sessions, started)
    tamper(
        sessions, "UPDATE ledger_postings SET amount = :amount WHERE account = 'burned'", amount=NMR
    )
    before = snapshot(sessions)
    with (
        pytest.raises(LedgerTampered, match="left as it is") as refused,
        transaction(sessions) as session,
    ):
        started.rebuild_projection(session)
    assert any("transaction 5 (burn)" in p for p in refused.value.problems)
    assert snapshot(sessions) == before


# --- retrying ------------------------------------------------------------------------------------


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(f"sqlstate {sqlstate}")
        self.sqlstate = sqlstate


def test_serialised_runs_the_work_again_after_a_serialization_failure(
    sessions: sessionmaker[Session], started: SqlLedger
) -> None:
    attempts: list[int] = []

    def work(session: Session) -> Transaction:
        attempts.append(len(attempts) + 1)
        posted = started.post(
            session, "deposit", Currency.NMR, transfer(TREASURY, wallet(ALICE), NMR)
        )
        if len(attempts) < 3:  # written, then the database gives up on this attempt
            raise OperationalError("COMMIT", {}, _DriverError("40001"))
        return posted

    posted = serialised(sessions, work, pause=0)
    assert attempts == [1, 2, 3] and posted.sequence == 2  # the failed attempts left nothing
    with transaction(sessions) as session:
        assert started.balance(session, wallet(ALICE), Currency.NMR) == NMR


def test_serialised_gives_up_on_other_errors_and_after_its_attempts(
    sessions: sessionmaker[Session],
) -> None:
    calls: list[str] = []

    def fails_with(sqlstate: str) -> Callable[[Session], None]:
        def work(session: Session) -> None:
            calls.append(sqlstate)
            raise OperationalError("SELECT", {}, _DriverError(sqlstate))

        return work

    with pytest.raises(OperationalError):
        serialised(sessions, fails_with("42P01"), pause=0)
    with pytest.raises(OperationalError):
        serialised(sessions, fails_with("40P01"), attempts=4, pause=0)
    assert calls == ["42P01", *["40P01"] * 4]
    assert is_busy(OperationalError("x", {}, Exception("database is locked")))
    assert not is_busy(OperationalError("x", {}, Exception("no such table")))
