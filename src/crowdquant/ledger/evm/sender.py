"""Transactions sent at most once per business event, across retries, crashes and restarts.

`send(business_key, receiver, data)` records the signed transaction under its business key
and commits that row before broadcasting it; the call then waits for the receipt and the
confirmations and records the outcome. Sent again with the same key (a retry, or a restart
after a crash at any point), it never signs a second payment while the first may still be
mined: it finds the receipt if the transaction was mined, broadcasts the same signed bytes
(same nonce, same hash) if not, and signs anew, with a new nonce, only once another
transaction has taken that nonce without this one being mined.

`enqueue(session, ...)` records the call in the caller's own transaction instead, beside the
business rows that call for it, so the call exists exactly when they do; `dispatch` then
signs, sends and settles every queued or pending transaction in order. One process sends
for an operator key at a time (the scheduler's lease holder).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.models.evm import BUSINESS_KEY_LENGTH, EvmTransaction
from crowdquant.db.session import transaction
from crowdquant.faults import crash_point
from crowdquant.ledger.evm.errors import (
    BusinessKeyConflict,
    ChainCallRefused,
    ChainTransactionReverted,
)

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from eth_typing import HexStr
    from web3 import Web3


@dataclass(frozen=True)
class SentTransaction:
    """A business event's transaction, mined."""

    business_key: str
    tx_hash: str
    block_number: int


class TransactionSender:
    """Signs with the operator's key and sends each business event's call once."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        sessions: sessionmaker[Session],
        clock: Clock,
        *,
        confirmations: int = 1,
        receipt_timeout_seconds: float = 120.0,
        poll_seconds: float = 0.1,
    ) -> None:
        self.w3 = w3
        self.account = account
        self.sessions = sessions
        self.clock = clock
        self.chain_id = int(w3.eth.chain_id)
        self.confirmations = confirmations
        self.receipt_timeout_seconds = receipt_timeout_seconds
        self.poll_seconds = poll_seconds
        self.broadcast: Callable[[bytes], None] = self._broadcast

    # -- the interface ----------------------------------------------------------------------

    def send(self, business_key: str, receiver: str, data: str) -> SentTransaction:
        """Call `receiver` with `data` (0x-prefixed hex) once for `business_key`.

        Raises `ChainCallRefused` (the node says it would revert; nothing recorded),
        `BusinessKeyConflict` (the key names another call) or `ChainTransactionReverted`.
        """
        receiver = self._checked(business_key, receiver)
        for older in self.pending():  # a crash's leftovers go first: their nonces come first
            if older != business_key:
                self._settle_quietly(older)
        with transaction(self.sessions) as session:
            row = session.get(EvmTransaction, business_key)
            if row is None:
                nonce = self._next_nonce(session)
                raw, tx_hash = self._sign(receiver, data, nonce)
                row = self._row(business_key, receiver, data)
                row.nonce, row.raw_transaction, row.tx_hash = nonce, raw, tx_hash
                row.status = "pending"
                session.add(row)
            else:
                self._same_call(row, receiver, data)
        return self._settle(business_key)

    def enqueue(self, session: Session, business_key: str, receiver: str, data: str) -> None:
        """Record, in the caller's transaction, that `business_key` calls `receiver` with
        `data`: nothing is signed or sent until `dispatch`, and nothing at all if the
        caller's transaction rolls back. Again with the same call, nothing changes."""
        receiver = self._checked(business_key, receiver)
        row = session.get(EvmTransaction, business_key)
        if row is None:
            session.add(self._row(business_key, receiver, data))
        else:
            self._same_call(row, receiver, data)

    def send_call(self, business_key: str, call: Any) -> SentTransaction:
        """`send` a web3 contract function call (``contract.functions.f(...)``)."""
        return self.send(business_key, call.address, call._encode_transaction_data())

    def pending(self) -> list[str]:
        """The business keys whose transaction is not settled yet: those signed first (by
        nonce), then those queued (oldest first)."""
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(EvmTransaction.business_key)
                    .where(EvmTransaction.status.in_(("queued", "pending")))
                    .where(EvmTransaction.sender == self.account.address)
                    .where(EvmTransaction.chain_id == self.chain_id)
                    .order_by(
                        EvmTransaction.nonce.is_(None),
                        EvmTransaction.nonce,
                        EvmTransaction.created_at,
                        EvmTransaction.business_key,
                    )
                )
            )

    def dispatch(self) -> list[SentTransaction]:
        """Send and settle every queued or pending transaction (after a commit, or a
        restart); the mined ones. One the chain refuses or reverts stays recorded so."""
        settled = (self._settle_quietly(business_key) for business_key in self.pending())
        return [sent for sent in settled if sent is not None]

    resume = dispatch

    # -- the steps --------------------------------------------------------------------------

    def _checked(self, business_key: str, receiver: str) -> str:
        if not 0 < len(business_key) <= BUSINESS_KEY_LENGTH:
            raise BusinessKeyConflict(f"a business key has 1 to {BUSINESS_KEY_LENGTH} characters")
        return str(self.w3.to_checksum_address(receiver))

    def _row(self, business_key: str, receiver: str, data: str) -> EvmTransaction:
        now = self.clock.now()
        return EvmTransaction(
            business_key=business_key,
            chain_id=self.chain_id,
            sender=self.account.address,
            receiver=receiver,
            call_data=data,
            status="queued",
            created_at=now,
            updated_at=now,
        )

    def _same_call(self, row: EvmTransaction, receiver: str, data: str) -> None:
        if (row.chain_id, row.sender, row.receiver, row.call_data) != (
            self.chain_id,
            self.account.address,
            receiver,
            data,
        ):
            raise BusinessKeyConflict(f"{row.business_key!r} was sent with another call")

    def _settle_quietly(self, business_key: str) -> SentTransaction | None:
        """`_settle`, with a refusal or a revert left recorded rather than raised."""
        try:
            return self._settle(business_key)
        except (ChainTransactionReverted, ChainCallRefused):
            return None

    def _sign_queued(self, business_key: str) -> None:
        """Give a queued transaction its nonce and signature; one the node refuses is
        recorded as refused."""
        refused: ChainCallRefused | None = None
        with transaction(self.sessions) as session:
            row = session.get_one(EvmTransaction, business_key)
            if row.status != "queued":
                return
            try:
                nonce = self._next_nonce(session)
                row.raw_transaction, row.tx_hash = self._sign(row.receiver, row.call_data, nonce)
                row.nonce, row.status = nonce, "pending"
            except ChainCallRefused as exc:
                row.status, refused = "refused", exc
            row.updated_at = self.clock.now()
        if refused is not None:
            raise refused

    def _next_nonce(self, session: Session) -> int:
        on_chain = self.w3.eth.get_transaction_count(self.account.address, "pending")
        recorded = session.scalar(
            select(func.max(EvmTransaction.nonce))
            .where(EvmTransaction.sender == self.account.address)
            .where(EvmTransaction.chain_id == self.chain_id)
            .where(EvmTransaction.status == "pending")
        )
        return max(int(on_chain), -1 if recorded is None else recorded + 1)

    def _sign(self, receiver: str, data: str, nonce: int) -> tuple[str, str]:
        """The signed transaction (hex) and its hash; the node estimates its gas first."""
        gas = self._estimate_gas({"from": self.account.address, "to": receiver, "data": data})
        base_fee = self.w3.eth.get_block("latest").get("baseFeePerGas", 0)
        tip = self.w3.eth.max_priority_fee
        signed = self.account.sign_transaction(
            {
                "chainId": self.chain_id,
                "nonce": nonce,
                "to": cast("HexStr", receiver),
                "data": cast("HexStr", data),
                "value": 0,
                "gas": gas * 5 // 4,
                "maxPriorityFeePerGas": tip,
                "maxFeePerGas": 2 * base_fee + tip,
            }
        )
        return "0x" + signed.raw_transaction.hex(), "0x" + signed.hash.hex()

    def _estimate_gas(self, call: dict[str, str]) -> int:
        try:
            return int(self.w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except Exception as exc:  # the node's revert, in whichever class its client raises
            raise ChainCallRefused(f"the chain refused the call: {exc}") from None

    def _broadcast(self, raw: bytes) -> None:
        try:
            self.w3.eth.send_raw_transaction(raw)
        except Exception:  # already known, or already mined: the receipt decides
            return

    def _receipt(self, tx_hash: str) -> Any | None:
        from web3.exceptions import TransactionNotFound

        try:
            return self.w3.eth.get_transaction_receipt(tx_hash)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None

    def _settle(self, business_key: str) -> SentTransaction:
        with self.sessions() as session:
            status = session.get_one(EvmTransaction, business_key).status
        if status == "queued":
            self._sign_queued(business_key)
        with self.sessions() as session:
            row = session.get_one(EvmTransaction, business_key)
            status, tx_hash, raw, nonce = row.status, row.tx_hash, row.raw_transaction, row.nonce
            block_number = row.block_number
        if status == "refused":
            raise ChainCallRefused(f"the chain refused {business_key!r}")
        assert tx_hash is not None and raw is not None and nonce is not None
        if status == "reverted":
            raise ChainTransactionReverted(f"{business_key!r} reverted in block {block_number}")
        if status == "mined" and block_number is not None:
            return SentTransaction(business_key, tx_hash, block_number)
        receipt = self._receipt(tx_hash)
        if receipt is None and self._nonce_taken(nonce) and self._receipt(tx_hash) is None:
            # another transaction took the nonce, so this one can never be mined: it goes
            # back to the queue and is signed anew
            with transaction(self.sessions) as session:
                row = session.get_one(EvmTransaction, business_key)
                row.nonce = row.tx_hash = row.raw_transaction = None
                row.status, row.updated_at = "queued", self.clock.now()
            return self._settle(business_key)
        if receipt is None:
            self.broadcast(bytes.fromhex(raw.removeprefix("0x")))
            crash_point("chain:after-broadcast")
            receipt = self._await_receipt(tx_hash)
        mined_in = int(receipt["blockNumber"])
        self._await_confirmations(mined_in)
        reverted = receipt["status"] != 1
        with transaction(self.sessions) as session:
            row = session.get_one(EvmTransaction, business_key)
            row.status = "reverted" if reverted else "mined"
            row.block_number = mined_in
            row.updated_at = self.clock.now()
        if reverted:
            raise ChainTransactionReverted(f"{business_key!r} reverted in block {mined_in}")
        return SentTransaction(business_key, tx_hash, mined_in)

    def _nonce_taken(self, nonce: int) -> bool:
        return int(self.w3.eth.get_transaction_count(self.account.address, "latest")) > nonce

    def _await_receipt(self, tx_hash: str) -> Any:
        return self.w3.eth.wait_for_transaction_receipt(
            tx_hash,  # type: ignore[arg-type]
            timeout=self.receipt_timeout_seconds,
            poll_latency=self.poll_seconds,
        )

    def _await_confirmations(self, mined_in: int) -> None:
        deadline = time.monotonic() + self.receipt_timeout_seconds
        while self.w3.eth.block_number - mined_in + 1 < self.confirmations:
            if time.monotonic() > deadline:
                raise TimeoutError(f"block {mined_in} has too few confirmations")
            time.sleep(self.poll_seconds)
