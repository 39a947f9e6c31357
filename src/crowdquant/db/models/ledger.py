"""The ledger's tables: an append-only journal and the balances projected from it.

- `ledger_transactions`: one row per business event, numbered 1, 2, 3, ... (`sequence`,
  unique), its `event_key` unique (idempotency), one currency, and the hash chain
  (`previous_hash`, `hash`: hex SHA-256, see `crowdquant.ledger.chain`).
- `ledger_postings`: the transaction's amounts per account (one row per account, so the
  primary key is the pair). `amount` is a `TokenAmount` for both currencies: an exact
  integer of up to 38 digits in the transaction's currency's smallest unit (10^-18 NMR, or
  US cents); the unit is the transaction's `currency`. Accounts are their names
  (`treasury`, `wallet:<uuid>`, ...; `crowdquant.ledger.accounts`), not foreign keys: the
  ledger is infrastructure and names owners without depending on their tables.
- `ledger_balances`: the projection, one row per (account, currency) that ever moved,
  updated in the same database transaction as the postings; `last_sequence` is the
  transaction that last changed it. It can always be rebuilt from the journal.

Journal rows are only ever inserted; nothing in the code updates or deletes them.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from crowdquant.db.base import Base, HasId, TokenAmount, enum_type
from crowdquant.money import Currency

MAX_ACCOUNT_LENGTH = 64
HASH_LENGTH = 64
EVENT_KEY_LENGTH = 200


class LedgerTransaction(HasId, Base):
    __tablename__ = "ledger_transactions"

    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    event_key: Mapped[str] = mapped_column(String(EVENT_KEY_LENGTH), unique=True)
    currency: Mapped[Currency] = mapped_column(enum_type(Currency, "currency"))
    memo: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    previous_hash: Mapped[str] = mapped_column(String(HASH_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_LENGTH), unique=True)


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"

    transaction_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_transactions.id", ondelete="RESTRICT"), primary_key=True
    )
    account: Mapped[str] = mapped_column(String(MAX_ACCOUNT_LENGTH), primary_key=True, index=True)
    amount: Mapped[int] = mapped_column(TokenAmount())


class LedgerBalance(Base):
    __tablename__ = "ledger_balances"

    account: Mapped[str] = mapped_column(String(MAX_ACCOUNT_LENGTH), primary_key=True)
    currency: Mapped[Currency] = mapped_column(enum_type(Currency, "currency"), primary_key=True)
    balance: Mapped[int] = mapped_column(TokenAmount())
    last_sequence: Mapped[int] = mapped_column(BigInteger)
