"""Transactions sent to an EVM chain, one row per business event (`crowdquant.ledger.evm`).

A row is written, with the signed transaction, before the transaction is broadcast, and the
key is unique: after a crash the same signed transaction (same nonce, same hash) is sent
again, so a business event is paid on chain at most once. `status`: ``queued`` (recorded
with the business rows that call for it, not signed yet: no nonce, hash or bytes),
``pending`` (signed, maybe broadcast), then ``mined``, ``reverted``, or ``refused`` (the
node said the call would revert when it was signed). A transaction whose nonce another took
is signed again with a new nonce (``tx_hash``, ``raw_transaction`` replaced).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crowdquant.db.base import Base, HasId, TokenAmount

BUSINESS_KEY_LENGTH = 200


class EvmTransaction(Base):
    __tablename__ = "evm_transactions"
    __table_args__ = (
        CheckConstraint(
            "status IN ('queued', 'pending', 'mined', 'reverted', 'refused')",
            name="evm_transaction_status",
        ),
    )

    business_key: Mapped[str] = mapped_column(String(BUSINESS_KEY_LENGTH), primary_key=True)
    chain_id: Mapped[int] = mapped_column(BigInteger)
    sender: Mapped[str] = mapped_column(String(42), index=True)
    receiver: Mapped[str] = mapped_column(String(42))
    call_data: Mapped[str] = mapped_column(Text)
    """The call, 0x-prefixed hex: a retry with other data under the same key is refused."""
    nonce: Mapped[int | None] = mapped_column(BigInteger)
    tx_hash: Mapped[str | None] = mapped_column(String(66), unique=True)
    raw_transaction: Mapped[str | None] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16))
    block_number: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class ChainRound(Base):
    """A round's id on the tournament contract: ids there increase across every tournament
    sharing the contract, so each round opened on chain takes the next one."""

    __tablename__ = "chain_rounds"

    round_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("rounds.id", ondelete="RESTRICT"), primary_key=True
    )
    chain_round_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    created_at: Mapped[datetime]


class ChainEvent(HasId, Base):
    """One event of the token or the tournament contract, mirrored by the indexer
    (`crowdquant.ledger.evm.indexer`): once per (transaction, log index), so a replay of the
    same blocks adds nothing. `account` and `counterparty` are the addresses it names
    (a transfer's sender and receiver; a stake's or claim's staker), `amount` its amount
    (a claim's: what it paid), `args` every argument as text."""

    __tablename__ = "chain_events"
    __table_args__ = (UniqueConstraint("tx_hash", "log_index"),)

    chain_id: Mapped[int] = mapped_column(BigInteger)
    block_number: Mapped[int] = mapped_column(BigInteger, index=True)
    tx_hash: Mapped[str] = mapped_column(String(66))
    log_index: Mapped[int] = mapped_column(BigInteger)
    contract: Mapped[str] = mapped_column(String(42))
    event: Mapped[str] = mapped_column(String(32))
    round_id: Mapped[int | None] = mapped_column(BigInteger)
    """The round's id on the tournament contract, for the tournament's events."""
    model: Mapped[str | None] = mapped_column(String(66))
    account: Mapped[str | None] = mapped_column(String(42), index=True)
    counterparty: Mapped[str | None] = mapped_column(String(42))
    amount: Mapped[int | None] = mapped_column(TokenAmount())
    args: Mapped[dict[str, Any]] = mapped_column(default=dict)


class ChainCursor(Base):
    """The last block the indexer has mirrored, per chain and contracts."""

    __tablename__ = "chain_cursors"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    block_number: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]
