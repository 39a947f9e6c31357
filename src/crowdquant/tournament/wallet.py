"""A participant's wallet: balances, and a statement whose lines say in plain words where
each amount came from and where it went.

The ledger's statement (`Ledger.history`) gives the wallet's side of each transaction; the
other side comes from the transaction's postings, named for a person: "treasury", "stake of
alice_model", "pending release of alice_model", "prize pool of tournament 8", "burned".
Amounts stay integers of the currency's smallest unit.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from crowdquant.db.models import Account, Model, Tournament
from crowdquant.ledger import AccountId, AccountKind, Entry, Ledger, wallet
from crowdquant.money import Currency

WALLET = "wallet"


def event_kind(event_key: str) -> str:
    """What kind of event a transaction records: its key up to the first ``:`` (grant,
    stake, release, payout, payout-usd, ...)."""
    return event_key.split(":", 1)[0]


@dataclass(frozen=True)
class StatementLine:
    """One transaction as the wallet's owner sees it."""

    sequence: int
    """The ledger transaction's place in the journal (its id for the participant)."""
    kind: str
    event_key: str
    """The ledger event's key (its transaction's on chain, where it has one)."""
    currency: Currency
    amount: int
    """What it added to the wallet (negative: what it took), in the smallest unit."""
    balance: int
    """The wallet's balance in `currency` right after it."""
    time: datetime
    memo: str
    counterparty: str
    """The other side, in plain words."""

    @property
    def source(self) -> str:
        return WALLET if self.amount < 0 else self.counterparty

    @property
    def target(self) -> str:
        return self.counterparty if self.amount < 0 else WALLET


@dataclass(frozen=True)
class Statement:
    total: int
    """How many lines the whole statement has."""
    lines: list[StatementLine]
    """The lines asked for, newest first."""


def wallet_balance(session: Session, ledger: Ledger, account: Account, currency: Currency) -> int:
    """What `account`'s wallet holds in `currency`, in its smallest unit."""
    return ledger.balance(session, wallet(account.id), currency)


def wallet_balances(session: Session, ledger: Ledger, account: Account) -> dict[Currency, int]:
    return {currency: wallet_balance(session, ledger, account, currency) for currency in Currency}


def wallet_statement(
    session: Session,
    ledger: Ledger,
    account: Account,
    *,
    currency: Currency | None = None,
    offset: int = 0,
    limit: int | None = None,
) -> Statement:
    """`account`'s wallet statement, newest first, from `offset` (at most `limit` lines)."""
    own = wallet(account.id)
    entries = ledger.history(session, own, currency)
    entries.reverse()
    page = entries[offset:] if limit is None else entries[offset : offset + limit]
    sides = {entry.sequence: _other_side(session, ledger, own, entry) for entry in page}
    names = _Names(session, [account for found in sides.values() for account in found])
    lines = [
        StatementLine(
            sequence=entry.sequence,
            kind=event_kind(entry.event_key),
            event_key=entry.event_key,
            currency=entry.currency,
            amount=entry.amount,
            balance=entry.balance,
            time=entry.created_at,
            memo=entry.memo,
            counterparty=" and ".join(names.describe(other) for other in sides[entry.sequence])
            or "nobody",
        )
        for entry in page
    ]
    return Statement(total=len(entries), lines=lines)


def _other_side(session: Session, ledger: Ledger, own: AccountId, entry: Entry) -> list[AccountId]:
    """The accounts that gave what the wallet received (or received what it gave)."""
    transaction = ledger.find(session, entry.event_key)
    if transaction is None:  # the statement names only recorded transactions
        return []
    receiving = entry.amount > 0
    return [
        posting.account
        for posting in transaction.postings
        if posting.account != own and (posting.amount < 0 if receiving else posting.amount > 0)
    ]


class _Names:
    """Plain words for ledger accounts, with the model and tournament names looked up once."""

    def __init__(self, session: Session, accounts: Iterable[AccountId]) -> None:
        owners: dict[AccountKind, set[uuid.UUID]] = {}
        for account in accounts:
            if account.owner is not None:
                owners.setdefault(account.kind, set()).add(account.owner)
        model_ids = owners.get(AccountKind.STAKE, set()) | owners.get(AccountKind.RELEASE, set())
        self.models: dict[uuid.UUID, str] = (
            dict(session.execute(select(Model.id, Model.name).where(Model.id.in_(model_ids))).all())
            if model_ids
            else {}
        )
        tournament_ids = owners.get(AccountKind.PRIZE_POOL, set())
        self.tournaments: dict[uuid.UUID, int] = (
            dict(
                session.execute(
                    select(Tournament.id, Tournament.number).where(
                        Tournament.id.in_(tournament_ids)
                    )
                ).all()
            )
            if tournament_ids
            else {}
        )

    def describe(self, account: AccountId) -> str:
        owner = account.owner
        if account.kind is AccountKind.STAKE and owner is not None:
            return f"stake of {self.models.get(owner, 'a model')}"
        if account.kind is AccountKind.RELEASE and owner is not None:
            return f"pending release of {self.models.get(owner, 'a model')}"
        if account.kind is AccountKind.PRIZE_POOL and owner is not None:
            number = self.tournaments.get(owner)
            return "a prize pool" if number is None else f"prize pool of tournament {number}"
        if account.kind is AccountKind.WALLET:
            return "another wallet"  # never another participant's name
        return account.kind.value.replace("_", " ")
