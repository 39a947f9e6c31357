"""The hash of a transaction covers every field and the previous hash, canonically."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from crowdquant.ledger.chain import (
    ENCODING_VERSION,
    GENESIS_PREVIOUS_HASH,
    canonical_bytes,
    transaction_hash,
)

WHEN = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
FIELDS: dict[str, Any] = {
    "previous_hash": GENESIS_PREVIOUS_HASH,
    "sequence": 2,
    "event_key": "stake:m:1",
    "currency": "NMR",
    "memo": "stake",
    "created_at": WHEN,
    "postings": [("wallet:a", -5), ("stake:b", 5)],
}


def test_the_hash_is_sha256_hex_of_versioned_compact_json() -> None:
    digest = transaction_hash(**FIELDS)
    assert len(digest) == 64 and int(digest, 16) >= 0
    document = json.loads(canonical_bytes(**FIELDS))
    assert document["version"] == ENCODING_VERSION
    assert document["created_at"] == "2026-01-02T03:04:05.678901+00:00"
    assert document["postings"] == [["stake:b", "5"], ["wallet:a", "-5"]]  # sorted, as text


def test_the_order_postings_are_given_in_and_the_timezone_do_not_matter() -> None:
    reordered = {**FIELDS, "postings": list(reversed(FIELDS["postings"]))}
    elsewhere = {**FIELDS, "created_at": WHEN.astimezone(timezone(timedelta(hours=5)))}
    assert transaction_hash(**reordered) == transaction_hash(**FIELDS)
    assert transaction_hash(**elsewhere) == transaction_hash(**FIELDS)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("previous_hash", "1" * 64),
        ("sequence", 3),
        ("event_key", "stake:m:2"),
        ("currency", "USD"),
        ("memo", "stake!"),
        ("created_at", WHEN + timedelta(microseconds=1)),
        ("postings", [("wallet:a", -6), ("stake:b", 6)]),
        ("postings", [("wallet:c", -5), ("stake:b", 5)]),
    ],
)
def test_changing_any_field_changes_the_hash(field: str, value: object) -> None:
    assert transaction_hash(**{**FIELDS, field: value}) != transaction_hash(**FIELDS)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="naive"):
        transaction_hash(**{**FIELDS, "created_at": WHEN.replace(tzinfo=None)})
