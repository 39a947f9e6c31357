"""The protocol's value types, and the SQL backend satisfying the protocol."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from crowdquant.clock import SystemClock
from crowdquant.ledger import Ledger, Posting, Transaction, stake, transfer, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import Currency

ALICE, MODEL = uuid.uuid4(), uuid.uuid4()


def test_transfer_is_two_postings_that_cancel() -> None:
    out, into = transfer(wallet(ALICE), stake(MODEL), 7)
    assert out == Posting(wallet(ALICE), -7) and into == Posting(stake(MODEL), 7)


def test_a_transaction_tells_what_it_did_to_an_account() -> None:
    moved = Transaction(
        sequence=2,
        event_key="k",
        currency=Currency.NMR,
        postings=transfer(wallet(ALICE), stake(MODEL), 7),
        memo="",
        created_at=datetime(2026, 1, 1, tzinfo=UTC),
        previous_hash="0" * 64,
        hash="1" * 64,
    )
    assert moved.amount(wallet(ALICE)) == -7
    assert moved.amount(stake(MODEL)) == 7
    assert moved.amount(wallet(MODEL)) == 0


def test_the_sql_backend_is_a_ledger() -> None:
    backend: Ledger = SqlLedger(SystemClock())  # checked statically by mypy
    assert isinstance(backend, Ledger)
