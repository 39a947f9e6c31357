"""`crowdquant ledger genesis|grant|fund-prizes|audit|dispatch|index`, as an operator types them."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.clock import SystemClock
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.ledger import TREASURY, AccountId, stake, transfer, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.settings import Settings

runner = CliRunner()
ALICE, MODEL = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["ledger", *args])
    return result.exit_code, " ".join(result.output.split())  # lines unwrapped


def _stake_something() -> None:
    engine = make_engine(Settings().database)
    try:
        books = SqlLedger(SystemClock())
        with transaction(session_factory(engine)) as session:
            books.post(
                session, "deposit", Currency.NMR, transfer(TREASURY, wallet(ALICE), 50 * NMR_UNIT)
            )
            books.post(
                session, "stake", Currency.NMR, transfer(wallet(ALICE), stake(MODEL), 20 * NMR_UNIT)
            )
    finally:
        engine.dispose()


def test_genesis_mints_once_and_says_so_the_second_time(home: Path) -> None:
    code, output = _run("genesis")
    assert code == 0, output
    assert "minted 11,000,000 NMR into the treasury" in output
    code, again = _run("genesis")
    assert code == 0, again
    assert "already recorded" in again and "nothing minted" in again
    assert output.split("genesis hash ")[1] == again.split("genesis hash ")[1]


def test_audit_of_sound_books(home: Path) -> None:
    code, output = _run("audit")  # a fresh database: empty books are sound
    assert (code, output.endswith("the books are sound")) == (0, True), output
    _run("genesis")
    _stake_something()
    code, output = _run("audit")
    assert code == 0, output
    assert "journal: 3 transactions; head 3" in output
    assert "11,000,000 NMR minted, 0 NMR burned, 11,000,000 NMR in circulation" in output
    assert output.endswith("the books are sound")


def test_audit_of_tampered_books_names_the_problem_and_exits_1(home: Path) -> None:
    _run("genesis")
    _stake_something()
    with sqlite3.connect(home / "crowdquant.db") as db:
        db.execute(
            "UPDATE ledger_postings SET amount = ? WHERE account = ?",
            (str(30 * NMR_UNIT), str(stake(MODEL))),
        )
    code, output = _run("audit")
    assert code == 1, output
    assert "problem: transaction 3 (stake) does not match its recorded hash" in output
    assert "problem: transaction 3 (stake): its postings sum to 10 NMR, not zero" in output
    assert (
        f"problem: stake:{MODEL} holds 20 NMR in the balances table, but the journal gives 30 NMR"
        in output
    )
    assert "the books are NOT sound: 3 problems found" in output
    assert "the books are sound" not in output


def test_genesis_refuses_books_whose_genesis_was_rewritten(home: Path) -> None:
    _run("genesis")
    with sqlite3.connect(home / "crowdquant.db") as db:
        db.execute("UPDATE ledger_postings SET amount = '1' WHERE account = 'treasury'")
    code, output = _run("genesis")
    assert code == 1
    assert "error: the recorded genesis is not the fixed supply" in output


def test_books_with_postings_of_a_removed_transaction_are_refused_at_the_door(home: Path) -> None:
    _run("genesis")
    _stake_something()
    with sqlite3.connect(home / "crowdquant.db") as db:  # foreign keys are off in plain sqlite3
        db.execute("DELETE FROM ledger_transactions WHERE event_key = 'deposit'")
    code, output = _run("audit")
    assert code == 1, output
    assert "foreign keys broken" in output and "ledger_postings" in output


def _balance(account: AccountId, currency: Currency) -> int:
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            return SqlLedger(SystemClock()).balance(session, account, currency)
    finally:
        engine.dispose()


def test_grant_gives_nmr_from_the_treasury_once_per_reference(home: Path) -> None:
    created = runner.invoke(
        app, ["account", "create", "alice", "--email", "a@example.org", "--password", "x" * 12]
    )
    assert created.exit_code == 0, created.output
    assert _run("genesis")[0] == 0
    code, output = _run("grant", "alice", "2.5", "--reference", "welcome")
    assert code == 0, output
    assert "alice's wallet holds 2.5 NMR" in output
    code, again = _run("grant", "alice", "2.5", "--reference", "welcome")
    assert code == 0 and "holds 2.5 NMR" in again  # the same grant, not a second one
    code, other = _run("grant", "alice", "7", "--reference", "welcome")
    assert code == 1 and "already recorded" in other
    code, bad = _run("grant", "alice", "0")
    assert code == 1 and "not a positive amount of NMR" in bad
    code, huge = _run("grant", "alice", "1e999999")
    assert code == 1 and "without an exponent" in huge
    code, nobody = _run("grant", "mallory", "1")
    assert code == 1 and "mallory" in nobody
    assert _balance(TREASURY, Currency.NMR) == 11_000_000 * NMR_UNIT - 25 * NMR_UNIT // 10


def test_fund_prizes_puts_usd_into_a_tournaments_prize_pool(home: Path) -> None:
    _run("genesis")
    built = runner.invoke(app, ["data", "build", "--source", "synthetic", "--stocks", "40",
                                "--weeks", "110", "--seed", "3", "--version", "v1"])  # fmt: skip
    assert built.exit_code == 0, built.output
    created = runner.invoke(app, ["tournament", "create", "--number", "1", "--name", "t2017",
                                  "--cadence", "weekly", "--rules", "legacy2017",
                                  "--dataset", "v1"])  # fmt: skip
    assert created.exit_code == 0, created.output
    code, output = _run("fund-prizes", "--tournament", "1", "--usd", "3603.05")
    assert code == 0, output
    assert "prize pool holds 3,603.05 USD" in output
    code, bad = _run("fund-prizes", "--tournament", "1", "--usd", "1.001")
    assert code == 1 and "at most 2 decimals" in bad
    for usd, problem in (("1e999999", "without an exponent"), ("1_000", "without underscores")):
        code, bad = _run("fund-prizes", "--tournament", "1", "--usd", usd)
        assert code == 1 and problem in bad
    code, missing = _run("fund-prizes", "--tournament", "2", "--usd", "10")
    assert code == 1 and "no tournament 2" in missing
    code, audit = _run("audit")
    assert code == 0 and "3,603.05 USD" in audit


def test_dispatch_on_the_database_books_has_nothing_to_send(home: Path) -> None:
    code, output = _run("dispatch")
    assert (code, output) == (0, "the books are kept in the database only: nothing to send")


def test_index_on_the_database_books_has_nothing_to_read(home: Path) -> None:
    code, output = _run("index")
    assert (code, output) == (0, "the books are kept in the database only: nothing to index")
