"""The rules checked before anything is written: keys, amounts, currencies, balance, minting."""

from __future__ import annotations

import uuid

import pytest

from crowdquant.ledger import (
    BURNED,
    GENESIS,
    OPERATOR_FUNDING,
    TREASURY,
    InsufficientFunds,
    InvalidPosting,
    MintingRefused,
    Posting,
    Unbalanced,
    prize_pool,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.rules import apply, check_transaction, genesis_postings
from crowdquant.money import GENESIS_SUPPLY, Currency

ALICE, MODEL, TOURNAMENT = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()


def test_postings_are_netted_per_account_sorted_and_zeros_dropped() -> None:
    currency, moved = check_transaction(
        "k",
        "NMR",
        [
            Posting(wallet(ALICE), -10),
            Posting(stake(MODEL), 7),
            Posting(stake(MODEL), 3),
            Posting(TREASURY, 4),
            Posting(TREASURY, -4),
        ],
        "",
    )
    assert currency is Currency.NMR
    assert moved == tuple(sorted(transfer(wallet(ALICE), stake(MODEL), 10), key=str))


@pytest.mark.parametrize(
    ("event_key", "match"),
    [
        ("", "non-empty"),
        (None, "non-empty"),
        ("x" * 201, "at most 200"),
        (" padded", "surrounding spaces"),
        ("line\nbreak", "printable"),
    ],
)
def test_bad_event_keys_are_refused(event_key: object, match: str) -> None:
    with pytest.raises(InvalidPosting, match=match):
        check_transaction(event_key, Currency.NMR, transfer(TREASURY, wallet(ALICE), 1), "")


def test_the_genesis_key_is_reserved() -> None:
    with pytest.raises(MintingRefused, match="genesis"):
        check_transaction("genesis", Currency.NMR, transfer(TREASURY, wallet(ALICE), 1), "")


@pytest.mark.parametrize(
    ("postings", "match"),
    [
        ([Posting(TREASURY, -1.0), Posting(wallet(ALICE), 1.0)], "int counts"),  # type: ignore[arg-type]
        ([Posting(TREASURY, True), Posting(wallet(ALICE), -1)], "int counts"),
        ([("treasury", -1), ("wallet", 1)], "not a posting"),
        ([Posting(TREASURY, -(10**38)), Posting(wallet(ALICE), 10**38)], "too many digits"),
        ([Posting(TREASURY, 5), Posting(TREASURY, -5)], "moves nothing"),
        ([], "moves nothing"),
        (transfer(TREASURY, prize_pool(TOURNAMENT), 1), "cannot hold NMR"),
    ],
)
def test_malformed_postings_are_refused(postings: list[Posting], match: str) -> None:
    with pytest.raises(InvalidPosting, match=match):
        check_transaction("k", Currency.NMR, postings, "")


def test_unknown_currencies_and_long_memos_are_refused() -> None:
    with pytest.raises(InvalidPosting, match="not a currency"):
        check_transaction("k", "EUR", transfer(TREASURY, wallet(ALICE), 1), "")
    with pytest.raises(InvalidPosting, match="memo"):
        check_transaction("k", Currency.NMR, transfer(TREASURY, wallet(ALICE), 1), "m" * 501)
    with pytest.raises(InvalidPosting, match="cannot hold USD"):
        check_transaction("k", Currency.USD, transfer(TREASURY, wallet(ALICE), 1), "")


def test_postings_must_sum_to_zero() -> None:
    with pytest.raises(Unbalanced, match=r"sum to 0\.000000000000000001 NMR"):
        check_transaction("k", Currency.NMR, [Posting(wallet(ALICE), 1)], "")
    with pytest.raises(Unbalanced, match=r"-0\.01 USD"):
        check_transaction(
            "k", Currency.USD, [Posting(OPERATOR_FUNDING, -2), Posting(wallet(ALICE), 1)], ""
        )


def test_nothing_mints_the_genesis_account_and_nothing_leaves_the_burn_sink() -> None:
    with pytest.raises(MintingRefused, match="supply is fixed"):
        check_transaction("k", Currency.NMR, transfer(GENESIS, TREASURY, 1), "")
    with pytest.raises(MintingRefused, match="burn sink"):
        check_transaction("k", Currency.NMR, transfer(BURNED, wallet(ALICE), 1), "")


def test_genesis_postings_move_the_whole_supply_into_the_treasury() -> None:
    assert genesis_postings() == (
        Posting(GENESIS, -GENESIS_SUPPLY),
        Posting(TREASURY, GENESIS_SUPPLY),
    )


def test_apply_refuses_an_overdraft_and_names_the_account() -> None:
    postings = transfer(wallet(ALICE), stake(MODEL), 10)
    assert apply(Currency.NMR, postings, {wallet(ALICE): 10}) == {
        wallet(ALICE): 0,
        stake(MODEL): 10,
    }
    with pytest.raises(InsufficientFunds, match=f"wallet:{ALICE} holds") as refused:
        apply(Currency.NMR, postings, {wallet(ALICE): 9})
    assert (refused.value.balance, refused.value.needed) == (9, 10)


def test_apply_lets_genesis_and_operator_funding_go_negative_only() -> None:
    assert apply(Currency.NMR, genesis_postings(), {})[GENESIS] == -GENESIS_SUPPLY
    funded = apply(Currency.USD, transfer(OPERATOR_FUNDING, prize_pool(TOURNAMENT), 500), {})
    assert funded[OPERATOR_FUNDING] == -500
    with pytest.raises(InsufficientFunds):
        apply(Currency.USD, transfer(prize_pool(TOURNAMENT), wallet(ALICE), 1), {})
