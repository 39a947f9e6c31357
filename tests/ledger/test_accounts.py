"""Account names, which currencies each account holds, which may go negative."""

from __future__ import annotations

import uuid

import pytest

from crowdquant.ledger.accounts import (
    BURNED,
    GENESIS,
    OPERATOR_FUNDING,
    TREASURY,
    AccountId,
    AccountKind,
    prize_pool,
    release,
    stake,
    wallet,
)
from crowdquant.money import Currency

OWNER = uuid.UUID("12345678-1234-5678-1234-567812345678")


@pytest.mark.parametrize(
    ("account", "name"),
    [
        (GENESIS, "genesis"),
        (TREASURY, "treasury"),
        (BURNED, "burned"),
        (OPERATOR_FUNDING, "operator_funding"),
        (wallet(OWNER), f"wallet:{OWNER}"),
        (stake(OWNER), f"stake:{OWNER}"),
        (release(OWNER), f"release:{OWNER}"),
        (prize_pool(OWNER), f"prize_pool:{OWNER}"),
    ],
)
def test_accounts_are_written_kind_colon_owner_and_parse_back(
    account: AccountId, name: str
) -> None:
    assert str(account) == name
    assert AccountId.parse(name) == account
    assert len(name) <= 64


@pytest.mark.parametrize(
    "name",
    [
        "",
        "vault",
        "wallet",
        "wallet:",
        "wallet:not-a-uuid",
        f"treasury:{OWNER}",
        f"wallet:{OWNER.hex}",  # not the canonical spelling
        f"WALLET:{OWNER}",
    ],
)
def test_names_of_no_account_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="not an account"):
        AccountId.parse(name)


def test_an_owned_kind_needs_an_owner_and_a_single_one_has_none() -> None:
    with pytest.raises(ValueError, match="belongs to an owner"):
        AccountId(AccountKind.STAKE)
    with pytest.raises(ValueError, match="has no owner"):
        AccountId(AccountKind.TREASURY, OWNER)


def test_which_account_holds_which_currency() -> None:
    nmr_only = [GENESIS, TREASURY, BURNED, stake(OWNER), release(OWNER)]
    usd_only = [OPERATOR_FUNDING, prize_pool(OWNER)]
    for account in nmr_only:
        assert account.holds(Currency.NMR) and not account.holds(Currency.USD), account
    for account in usd_only:
        assert account.holds(Currency.USD) and not account.holds(Currency.NMR), account
    assert wallet(OWNER).holds(Currency.NMR) and wallet(OWNER).holds(Currency.USD)


def test_only_genesis_for_nmr_and_operator_funding_for_usd_may_go_negative() -> None:
    everyone = [
        GENESIS,
        TREASURY,
        BURNED,
        OPERATOR_FUNDING,
        wallet(OWNER),
        stake(OWNER),
        release(OWNER),
        prize_pool(OWNER),
    ]
    negative = {
        (account, currency)
        for account in everyone
        for currency in Currency
        if account.may_go_negative(currency)
    }
    assert negative == {(GENESIS, Currency.NMR), (OPERATOR_FUNDING, Currency.USD)}
