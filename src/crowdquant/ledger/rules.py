"""The rules every transaction obeys, whatever the backend: checked before anything is
written, so a refused transaction leaves no trace.

- An event key names one business event (`stake:<model>:<round>`, `resolve:<round>:<model>`):
  1 to 200 printable characters without surrounding spaces; `genesis` is reserved.
- Every amount is an `int` in the currency's smallest unit; postings to the same account
  are netted, zero nets dropped, and something must move.
- Every account must hold the transaction's currency (a stake holds NMR, a prize pool USD).
- The postings sum to zero (`Unbalanced`).
- No minting (`MintingRefused`): only the genesis touches the genesis account, and nothing
  leaves the burn sink.
- No account goes below zero except genesis (NMR) and operator funding (USD)
  (`InsufficientFunds`, checked against the balances by `apply`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from crowdquant.ledger.accounts import BURNED, GENESIS, TREASURY, AccountId
from crowdquant.ledger.errors import InsufficientFunds, InvalidPosting, MintingRefused, Unbalanced
from crowdquant.ledger.interface import Posting
from crowdquant.money import GENESIS_SUPPLY, Currency, format_amount

GENESIS_EVENT_KEY = "genesis"
GENESIS_MEMO = "genesis: the fixed supply of 11,000,000 NMR, minted once into the treasury"
MAX_EVENT_KEY_LENGTH = 200
MAX_MEMO_LENGTH = 500
MAX_AMOUNT_DIGITS = 38


def genesis_postings() -> tuple[Posting, ...]:
    """The only minting there is: the whole supply from the genesis account to the treasury."""
    return (Posting(GENESIS, -GENESIS_SUPPLY), Posting(TREASURY, GENESIS_SUPPLY))


def check_event_key(event_key: object) -> str:
    if not isinstance(event_key, str) or not event_key:
        raise InvalidPosting("an event key is a non-empty string")
    if len(event_key) > MAX_EVENT_KEY_LENGTH:
        raise InvalidPosting(f"an event key is at most {MAX_EVENT_KEY_LENGTH} characters")
    if event_key != event_key.strip() or not event_key.isprintable():
        raise InvalidPosting(f"event key {event_key!r}: printable, without surrounding spaces")
    return event_key


def check_transaction(
    event_key: object, currency: object, postings: Iterable[Posting], memo: object
) -> tuple[Currency, tuple[Posting, ...]]:
    """The currency and the netted postings, sorted by account; a `LedgerError` if any rule
    other than the balances' is broken."""
    check_event_key(event_key)
    if event_key == GENESIS_EVENT_KEY:
        raise MintingRefused(f"the event key {GENESIS_EVENT_KEY!r} is the genesis's alone")
    try:
        checked_currency = Currency(str(currency))
    except ValueError:
        raise InvalidPosting(f"{currency!r} is not a currency: use NMR or USD") from None
    if not isinstance(memo, str) or len(memo) > MAX_MEMO_LENGTH:
        raise InvalidPosting(f"a memo is a string of at most {MAX_MEMO_LENGTH} characters")

    netted: dict[AccountId, int] = {}
    for posting in postings:
        if not isinstance(posting, Posting) or not isinstance(posting.account, AccountId):
            raise InvalidPosting(f"{posting!r} is not a posting to an account")
        amount = posting.amount
        if not isinstance(amount, int) or isinstance(amount, bool):
            raise InvalidPosting(
                f"{posting.account}: amounts are int counts of the smallest unit, not {amount!r}"
            )
        if len(str(abs(amount))) > MAX_AMOUNT_DIGITS:
            raise InvalidPosting(f"{posting.account}: {amount} has too many digits")
        if not posting.account.holds(checked_currency):
            raise InvalidPosting(f"{posting.account} cannot hold {checked_currency}")
        netted[posting.account] = netted.get(posting.account, 0) + amount

    total = sum(netted.values())
    if total != 0:
        raise Unbalanced(
            f"the postings sum to {format_amount(total, checked_currency)}, not zero:"
            " every amount taken from one account goes to another"
        )
    moved = tuple(
        Posting(account, amount)
        for account, amount in sorted(netted.items(), key=lambda item: str(item[0]))
        if amount != 0
    )
    if not moved:
        raise InvalidPosting("the transaction moves nothing")
    for posting in moved:
        if posting.account == GENESIS:
            raise MintingRefused()
        if posting.account == BURNED and posting.amount < 0:
            raise MintingRefused("burned NMR is gone for good: nothing leaves the burn sink")
    return checked_currency, moved


def apply(
    currency: Currency, postings: Iterable[Posting], balances: Mapping[AccountId, int]
) -> dict[AccountId, int]:
    """The posted accounts' new balances; `InsufficientFunds` if one would go below zero."""
    updated: dict[AccountId, int] = {}
    for posting in postings:
        before = balances.get(posting.account, 0)
        after = before + posting.amount
        if after < 0 and not posting.account.may_go_negative(currency):
            raise InsufficientFunds(
                f"{posting.account} holds {format_amount(before, currency)}:"
                f" it cannot give {format_amount(-posting.amount, currency)}",
                account=str(posting.account),
                balance=before,
                needed=-posting.amount,
            )
        updated[posting.account] = after
    return updated
