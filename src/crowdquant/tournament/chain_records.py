"""Where the site finds a ledger event's transaction on chain, and a round's Merkle root.

A ledger event's chain transaction is the mined one sent under the event's own key (a stake
pulled, a claim paid) or the burn sent for it (``burn:<event key>``, `ledger/evm/backend.py`).
A round's root is the one its resolution posted on chain (``round:<number>:resolve``,
`ledger/evm/tournament.py`), read back from that transaction's call. On the database ledger
alone there are none, and the pages show nothing more.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import RoundPayout
from crowdquant.db.models.evm import EvmTransaction

BURN = "burn:"
WORD = 64
"""Hex digits of one ABI word."""


@dataclass(frozen=True)
class RoundRoot:
    """A round's Merkle root of claims, as posted on chain, and the posting's hash."""

    root: str
    tx_hash: str


def transaction_hashes(session: Session, event_keys: Iterable[str]) -> dict[str, str]:
    """The hash of each event's mined transaction on chain, for the events that have one."""
    keys = set(event_keys)
    if not keys:
        return {}
    business_keys = keys | {BURN + key for key in keys}
    found: dict[str, str] = {}
    rows = session.execute(
        select(EvmTransaction.business_key, EvmTransaction.tx_hash)
        .where(EvmTransaction.business_key.in_(business_keys))
        .where(EvmTransaction.status == "mined")
        .order_by(EvmTransaction.business_key)
    )
    for business_key, tx_hash in rows:
        if tx_hash is None:  # pragma: no cover - a mined transaction has its hash
            continue
        event_key = business_key if business_key in keys else business_key[len(BURN) :]
        found.setdefault(event_key, tx_hash)
    return found


def payout_hashes(session: Session, payouts: Iterable[RoundPayout]) -> dict[uuid.UUID, str]:
    """The chain transaction of each model's NMR payout in a round, for those that have one."""
    models = {payout.event_key: payout.model_id for payout in payouts}
    return {models[key]: tx for key, tx in transaction_hashes(session, models).items()}


def round_root(session: Session, round_number: int) -> RoundRoot | None:
    """The Merkle root round `round_number`'s resolution posted on chain, if it did."""
    row = session.get(EvmTransaction, f"round:{round_number}:resolve")
    if row is None or row.status != "mined" or row.tx_hash is None:
        return None
    # resolveRound(roundId, merkleRoot, totalBurn, totalReward): the root is the 2nd word
    words = row.call_data.removeprefix("0x")[8:]
    root = words[WORD : 2 * WORD]
    if len(root) != WORD:
        return None
    return RoundRoot(root="0x" + root, tx_hash=row.tx_hash)
