"""A ledger on each backend's migrated database, and raw views of its tables for the tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import bindparam, text
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.base import TokenAmount
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger

START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


class TickingClock:
    """A clock one millisecond later at every reading, so records have distinct times."""

    def __init__(self, start: datetime = START) -> None:
        self._now = start

    def now(self) -> datetime:
        self._now += timedelta(milliseconds=1)
        return self._now


Snapshot = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]


def snapshot(sessions: sessionmaker[Session]) -> Snapshot:
    """Every row of the three ledger tables, as stored."""
    with transaction(sessions) as session:
        return (
            [
                tuple(row)
                for row in session.execute(
                    text(
                        "SELECT sequence, event_key, currency, memo, previous_hash, hash"
                        " FROM ledger_transactions ORDER BY sequence"
                    )
                )
            ],
            [
                tuple(row)
                for row in session.execute(
                    text(
                        "SELECT t.sequence, p.account, p.amount FROM ledger_postings p"
                        " JOIN ledger_transactions t ON t.id = p.transaction_id"
                        " ORDER BY t.sequence, p.account"
                    )
                )
            ],
            [
                tuple(row)
                for row in session.execute(
                    text(
                        "SELECT account, currency, balance, last_sequence FROM ledger_balances"
                        " ORDER BY account, currency"
                    )
                )
            ],
        )


def tamper(sessions: sessionmaker[Session], sql: str, **params: Any) -> int:
    """Run raw SQL behind the ledger's back (amounts bound as stored); rows changed."""
    statement = text(sql)
    if "amount" in params:
        statement = statement.bindparams(bindparam("amount", type_=TokenAmount()))
    if "balance" in params:
        statement = statement.bindparams(bindparam("balance", type_=TokenAmount()))
    with transaction(sessions) as session:
        changed: int = session.execute(statement, params).rowcount  # type: ignore[attr-defined]
        return changed


@pytest.fixture
def ledger() -> SqlLedger:
    return SqlLedger(TickingClock())


@pytest.fixture
def started(sessions: sessionmaker[Session], ledger: SqlLedger) -> SqlLedger:
    """The ledger after its genesis."""
    with transaction(sessions) as session:
        ledger.genesis(session)
    return ledger
