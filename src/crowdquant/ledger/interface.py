"""What services need from the ledger, whatever keeps it: one small protocol.

The default backend is `crowdquant.ledger.sql.SqlLedger` (double-entry tables in the
application's database); `crowdquant.ledger.evm.backend.EvmLedger` keeps the same books with
the token's supply on an EVM chain.

Contract of every backend:

- Every call takes the caller's database `session` and works inside its transaction: a
  posting commits or rolls back with the business rows written beside it, and a refusal
  (a `LedgerError`) has written nothing. Concurrent posts are serialised by the backend.
- `genesis` records the fixed supply (11,000,000 NMR) from the genesis account into the
  treasury, once; calling it again returns the recorded transaction. Nothing can be posted
  before it, and nothing is ever minted after it.
- `post` is idempotent on `event_key`: the same key with the same currency and (netted)
  postings, whatever the memo, returns the transaction already recorded and changes
  nothing; with anything else it raises `IdempotencyConflict`. Postings sum to zero per
  transaction, one currency per transaction; no account but genesis (NMR) and operator
  funding (USD) goes negative.
- `post_many` records several events in one call, exactly as the same `post` calls in
  order would (the same sequences, hashes and balances), with fewer queries; if any is
  refused, none of them is written.
- Amounts are ints in the currency's smallest unit; a positive amount adds to the
  account's balance, a negative one takes from it.
- `verify` never raises on bad books: it reports every problem in an `AuditReport`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from crowdquant.ledger.accounts import AccountId
from crowdquant.money import Currency

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crowdquant.ledger.audit import AuditReport


@dataclass(frozen=True)
class Posting:
    """`amount` (smallest units) added to `account`'s balance; negative takes it away."""

    account: AccountId
    amount: int


def transfer(source: AccountId, target: AccountId, amount: int) -> tuple[Posting, Posting]:
    """The two postings that move `amount` from `source` to `target`."""
    return Posting(source, -amount), Posting(target, amount)


@dataclass(frozen=True)
class NewTransaction:
    """One business event's postings, to record with `Ledger.post_many`."""

    event_key: str
    currency: Currency
    postings: tuple[Posting, ...]
    memo: str = ""


@dataclass(frozen=True)
class Transaction:
    """One recorded transaction of the journal."""

    sequence: int
    """Its place in the journal: 1 (the genesis), 2, 3, ... with no gaps."""
    event_key: str
    currency: Currency
    postings: tuple[Posting, ...]
    """Netted per account, sorted by account name; they sum to zero."""
    memo: str
    created_at: datetime
    previous_hash: str
    hash: str

    def amount(self, account: AccountId) -> int:
        """What the transaction added to `account` (negative: took from it; 0: untouched)."""
        return sum(posting.amount for posting in self.postings if posting.account == account)


@dataclass(frozen=True)
class Entry:
    """One line of an account's statement."""

    sequence: int
    event_key: str
    currency: Currency
    amount: int
    balance: int
    """The account's balance in `currency` right after this transaction."""
    created_at: datetime
    memo: str


@runtime_checkable
class Ledger(Protocol):
    """The books: balances in NMR and USD, changed only by appending balanced transactions."""

    def genesis(self, session: Session) -> Transaction:
        """Mint the fixed supply into the treasury, once; afterwards, the recorded genesis."""
        ...

    def hold(self, session: Session) -> None:
        """Take the books' write lock for the rest of `session`'s transaction: a service that
        reads balances or its own rows to decide what to post calls this first, so what it
        reads cannot change under it before it posts."""
        ...

    def post(
        self,
        session: Session,
        event_key: str,
        currency: Currency,
        postings: Iterable[Posting],
        *,
        memo: str = "",
    ) -> Transaction:
        """Record one business event's postings (idempotent on `event_key`).

        Raises `InvalidPosting`, `Unbalanced`, `MintingRefused`, `InsufficientFunds`,
        `IdempotencyConflict`, `NoGenesis` or `LedgerTampered`; then nothing is written.
        """
        ...

    def post_many(
        self, session: Session, transactions: Sequence[NewTransaction]
    ) -> list[Transaction]:
        """Record each of `transactions` in order, as `post` would one by one (idempotent on
        each event key); what each recorded. If one is refused, none is written."""
        ...

    def find(self, session: Session, event_key: str) -> Transaction | None:
        """The transaction recorded for `event_key`, if any."""
        ...

    def balance(self, session: Session, account: AccountId, currency: Currency) -> int:
        """`account`'s balance in `currency` (0 for an account that never moved)."""
        ...

    def balances(self, session: Session, currency: Currency) -> dict[AccountId, int]:
        """Every account that ever held `currency`, with its balance (zeros included)."""
        ...

    def balances_of(
        self, session: Session, accounts: Iterable[AccountId], currency: Currency
    ) -> dict[AccountId, int]:
        """Each of `accounts`' balance in `currency`, read at once (as `balance` reads one)."""
        ...

    def history(
        self, session: Session, account: AccountId, currency: Currency | None = None
    ) -> list[Entry]:
        """`account`'s statement, oldest first (both currencies unless one is given)."""
        ...

    def verify(self, session: Session) -> AuditReport:
        """Check the hash chain, every rule, the balances against the journal and
        conservation; every problem found, never an exception for bad books."""
        ...
