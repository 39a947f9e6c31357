"""Transactions sent at most once per business event, across retries, crashes and restarts.

`send(business_key, receiver, data)` records the signed transaction under its business key
and commits that row before broadcasting it; the call then waits for the receipt and the
confirmations and records the outcome. Sent again with the same key (a retry, or a restart
after a crash at any point), it never signs a second payment while the first may still be
mined: it finds the receipt if the transaction was mined, broadcasts the same signed bytes
(same nonce, same hash) if not, and signs anew, with a new nonce, only once another
transaction has taken that nonce without this one being mined. `resume` settles every
transaction left pending. One process sends for an operator key at a time (the scheduler's
lease holder).
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
        if not 0 < len(business_key) <= BUSINESS_KEY_LENGTH:
            raise BusinessKeyConflict(f"a business key has 1 to {BUSINESS_KEY_LENGTH} characters")
        receiver = self.w3.to_checksum_address(receiver)
        for older in self.pending():  # a crash's leftovers go first: their nonces come first
            if older != business_key:
                self._settle_quietly(older)
        with transaction(self.sessions) as session:
            row = session.get(EvmTransaction, business_key)
            if row is None:
                nonce = self._next_nonce(session)
                raw, tx_hash = self._sign(receiver, data, nonce)
                now = self.clock.now()
                session.add(
                    EvmTransaction(
                        business_key=business_key,
                        chain_id=self.chain_id,
                        sender=self.account.address,
                        receiver=receiver,
                        call_data=data,
                        nonce=nonce,
                        tx_hash=tx_hash,
                        raw_transaction=raw,
                        status="pending",
                        created_at=now,
                        updated_at=now,
                    )
                )
            elif (row.chain_id, row.sender, row.receiver, row.call_data) != (
                self.chain_id,
                self.account.address,
                receiver,
                data,
            ):
                raise BusinessKeyConflict(f"{business_key!r} was sent with another call")
        return self._settle(business_key)

    def send_call(self, business_key: str, call: Any) -> SentTransaction:
        """`send` a web3 contract function call (``contract.functions.f(...)``)."""
        return self.send(business_key, call.address, call._encode_transaction_data())

    def pending(self) -> list[str]:
        """The business keys whose transaction is not settled yet, oldest first."""
        with self.sessions() as session:
            return list(
                session.scalars(
                    select(EvmTransaction.business_key)
                    .where(EvmTransaction.status == "pending")
                    .where(EvmTransaction.sender == self.account.address)
                    .order_by(EvmTransaction.nonce)
                )
            )

    def resume(self) -> list[SentTransaction]:
        """Settle every pending transaction (after a restart); the mined ones."""
        settled = (self._settle_quietly(business_key) for business_key in self.pending())
        return [sent for sent in settled if sent is not None]

    # -- the steps --------------------------------------------------------------------------

    def _settle_quietly(self, business_key: str) -> SentTransaction | None:
        """`_settle`, with a revert left recorded rather than raised."""
        try:
            return self._settle(business_key)
        except ChainTransactionReverted:
            return None

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
            row = session.get_one(EvmTransaction, business_key)
            status, tx_hash, raw, nonce = row.status, row.tx_hash, row.raw_transaction, row.nonce
            receiver, data, block_number = row.receiver, row.call_data, row.block_number
        if status == "reverted":
            raise ChainTransactionReverted(f"{business_key!r} reverted in block {block_number}")
        if status == "mined" and block_number is not None:
            return SentTransaction(business_key, tx_hash, block_number)
        receipt = self._receipt(tx_hash)
        if receipt is None and self._nonce_taken(nonce) and self._receipt(tx_hash) is None:
            # another transaction took the nonce, so this one can never be mined: sign anew
            with transaction(self.sessions) as session:
                row = session.get_one(EvmTransaction, business_key)
                row.nonce = self._next_nonce(session)
                row.raw_transaction, row.tx_hash = self._sign(receiver, data, row.nonce)
                row.updated_at = self.clock.now()
                tx_hash, raw = row.tx_hash, row.raw_transaction
        if receipt is None:
            self.broadcast(bytes.fromhex(raw.removeprefix("0x")))
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
