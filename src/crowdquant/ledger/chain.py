"""The hash chain over the journal: each transaction's hash covers the previous one's.

`transaction_hash` is SHA-256 over a canonical encoding of everything a transaction says:
the previous transaction's hash, its sequence number, event key, currency, memo, time
(UTC, microseconds) and its postings sorted by account, amounts as decimal strings. The
encoding is compact JSON with sorted keys, prefixed by a version tag, so the same
transaction hashes the same on every backend and every Python.

Changing any recorded field, reordering, inserting or removing a transaction breaks the
chain from that point on. Rewriting the whole chain after a change is possible for anyone
who can write the database; the head hash (`AuditReport.head_hash`) written down elsewhere
catches that.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime

ENCODING_VERSION = "crowdquant-ledger-v1"
GENESIS_PREVIOUS_HASH = "0" * 64
"""What the first transaction names as its previous hash."""


def canonical_time(moment: datetime) -> str:
    """`moment` as UTC ISO 8601 with microseconds; naive datetimes are refused."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"naive datetime {moment!r}: the ledger records UTC times")
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical_bytes(
    *,
    previous_hash: str,
    sequence: int,
    event_key: str,
    currency: str,
    memo: str,
    created_at: datetime,
    postings: Iterable[tuple[str, int]],
) -> bytes:
    """The exact bytes a transaction's hash is taken over."""
    document = {
        "version": ENCODING_VERSION,
        "previous_hash": previous_hash,
        "sequence": sequence,
        "event_key": event_key,
        "currency": currency,
        "memo": memo,
        "created_at": canonical_time(created_at),
        "postings": [[account, str(amount)] for account, amount in sorted(postings)],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def transaction_hash(
    *,
    previous_hash: str,
    sequence: int,
    event_key: str,
    currency: str,
    memo: str,
    created_at: datetime,
    postings: Iterable[tuple[str, int]],
) -> str:
    """The hex SHA-256 of the transaction's canonical bytes."""
    return hashlib.sha256(
        canonical_bytes(
            previous_hash=previous_hash,
            sequence=sequence,
            event_key=event_key,
            currency=currency,
            memo=memo,
            created_at=created_at,
            postings=postings,
        )
    ).hexdigest()
