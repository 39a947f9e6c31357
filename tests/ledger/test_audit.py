"""The audit from the journal alone: each kind of problem is found and named."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from crowdquant.ledger import (
    BURNED,
    GENESIS,
    OPERATOR_FUNDING,
    SOUND,
    TREASURY,
    prize_pool,
    stake,
    wallet,
)
from crowdquant.ledger.audit import AuditReport, JournalRecord, audit, replay
from crowdquant.ledger.chain import GENESIS_PREVIOUS_HASH, transaction_hash
from crowdquant.money import GENESIS_SUPPLY

ALICE, MODEL, POOL = (
    str(wallet(uuid.uuid4())),
    str(stake(uuid.uuid4())),
    str(prize_pool(uuid.uuid4())),
)
START = datetime(2026, 1, 1, tzinfo=UTC)
Spec = tuple[str, str, tuple[tuple[str, int], ...]]


def chain(*specs: Spec, memo: str = "") -> list[JournalRecord]:
    """Records with a valid chain: (event key, currency, postings) each."""
    records: list[JournalRecord] = []
    previous = GENESIS_PREVIOUS_HASH
    for sequence, (event_key, currency, postings) in enumerate(specs, start=1):
        created_at = START + timedelta(minutes=sequence)
        digest = transaction_hash(
            previous_hash=previous,
            sequence=sequence,
            event_key=event_key,
            currency=currency,
            memo=memo,
            created_at=created_at,
            postings=postings,
        )
        records.append(
            JournalRecord(
                sequence, event_key, currency, memo, created_at, previous, digest, postings
            )
        )
        previous = digest
    return records


GENESIS_SPEC: Spec = (
    "genesis",
    "NMR",
    ((str(GENESIS), -GENESIS_SUPPLY), (str(TREASURY), GENESIS_SUPPLY)),
)
BOOKS: list[Spec] = [
    GENESIS_SPEC,
    ("deposit", "NMR", ((str(TREASURY), -100), (ALICE, 100))),
    ("stake", "NMR", ((ALICE, -60), (MODEL, 60))),
    ("burn", "NMR", ((MODEL, -6), (str(BURNED), 6))),
    ("fund", "USD", ((str(OPERATOR_FUNDING), -5000), (POOL, 5000))),
    ("prize", "USD", ((POOL, -1200), (ALICE, 1200))),
]


def _kinds(report: AuditReport) -> set[str]:
    return {problem.kind for problem in report.problems}


def test_sound_books_say_so_with_their_figures() -> None:
    records = chain(*BOOKS)
    report = audit(records, replay(records))
    assert report.sound and report.verdict == SOUND and report.problems == ()
    assert report.transactions == report.head_sequence == 6
    assert report.head_hash == records[-1].hash
    assert (report.minted, report.burned) == (GENESIS_SUPPLY, 6)
    assert report.circulating == GENESIS_SUPPLY - 6
    assert report.usd_funded == 5000


def test_empty_books_are_sound() -> None:
    report = audit([], {})
    assert report.sound and report.transactions == 0 and report.minted == 0


def test_a_rewritten_amount_breaks_its_hash_and_its_balance() -> None:
    records = chain(*BOOKS)
    records[2] = dataclasses.replace(records[2], postings=((ALICE, -60), (MODEL, 61)))
    report = audit(records, replay(chain(*BOOKS)))
    assert not report.sound
    assert _kinds(report) == {"hash", "unbalanced", "projection"}
    assert all(p.sequence == 3 for p in report.problems if p.kind in ("hash", "unbalanced"))
    assert report.verdict.startswith("the books are NOT sound")


def test_swapped_order_and_removed_transactions_break_the_chain() -> None:
    records = chain(*BOOKS)
    swapped = [*records[:2], records[3], records[2], *records[4:]]
    assert "chain" in _kinds(audit(swapped, replay(swapped)))
    removed = records[:3] + records[4:]
    report = audit(removed, replay(removed))
    assert "chain" in _kinds(report)
    assert any("numbered 5 where 4 was expected" in p.message for p in report.problems)


def test_a_first_transaction_other_than_the_genesis_is_minting() -> None:
    records = chain(("deposit", "NMR", ((str(TREASURY), -100), (ALICE, 100))))
    report = audit(records, replay(records))
    assert "minting" in _kinds(report) and "negative" in _kinds(report)


def test_touching_genesis_later_or_unburning_is_minting() -> None:
    records = chain(
        GENESIS_SPEC,
        ("more", "NMR", ((str(GENESIS), -5), (str(TREASURY), 5))),
        ("burn", "NMR", ((str(TREASURY), -5), (str(BURNED), 5))),
        ("unburn", "NMR", ((str(BURNED), -5), (str(TREASURY), 5))),
    )
    report = audit(records, replay(records))
    minting = [p for p in report.problems if p.kind == "minting"]
    assert [p.sequence for p in minting] == [2, 4]


def test_an_overdraft_anywhere_in_the_history_is_found() -> None:
    records = chain(
        GENESIS_SPEC,
        ("overdraw", "NMR", ((ALICE, -10), (MODEL, 10))),
        ("repay", "NMR", ((str(TREASURY), -10), (ALICE, 10))),
    )
    report = audit(records, replay(records))
    assert [(p.kind, p.sequence) for p in report.problems] == [("negative", 2)]


def test_unknown_accounts_and_currencies_and_wrong_holdings_are_named() -> None:
    records = chain(
        GENESIS_SPEC,
        ("odd", "NMR", ((str(TREASURY), -1), ("vault", 1))),
        ("pool", "NMR", ((str(TREASURY), -1), (POOL, 1))),
        ("euro", "EUR", ((str(OPERATOR_FUNDING), -1), (ALICE, 1))),
    )
    messages = [p.message for p in audit(records, replay(records)).problems if p.kind == "rule"]
    assert any("'vault', no account" in m for m in messages)
    assert any("cannot hold NMR" in m for m in messages)
    assert any("'EUR', no currency" in m for m in messages)


def test_a_projection_that_differs_from_the_journal_is_named_account_by_account() -> None:
    records = chain(*BOOKS)
    projection = replay(records)
    projection[(ALICE, "NMR")] += 1
    projection[(str(TREASURY), "NMR")] -= 1
    projection[("ghost", "USD")] = 0  # a zero row the journal does not know is harmless
    report = audit(records, projection)
    assert _kinds(report) == {"projection"}
    assert len(report.problems) == 2
    assert any(f"{ALICE} holds 0.000000000000000041 NMR" in p.message for p in report.problems)


def test_conservation_is_checked_on_the_projection() -> None:
    records = chain(*BOOKS)
    projection = replay(records)
    projection[(ALICE, "NMR")] += 5
    report = audit(records, projection)
    assert "conservation" in _kinds(report)
    assert any("genesis − burned" in p.message for p in report.problems)


def test_a_negative_projected_balance_is_named() -> None:
    records = chain(*BOOKS)
    projection = replay(records)
    projection[(POOL, "USD")] = -1
    projection[(ALICE, "USD")] += 3801
    assert any("negative balance" in p.message for p in audit(records, projection).problems)
