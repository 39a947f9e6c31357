"""The ledger in the application's database (SQLite or PostgreSQL): the default backend.

Tables: `crowdquant.db.models.ledger` (journal, postings, balances projection).

Serialisation. Every write to the books first takes the ledger's lock inside the caller's
transaction, held until it commits or rolls back: on PostgreSQL a transaction-level
advisory lock (`pg_advisory_xact_lock`), on SQLite the database's write lock (taken at once
by a write that changes nothing, as `BEGIN IMMEDIATE` would). Only then does it read the
chain's head, the idempotency key and the balances, so under READ COMMITTED (the default)
every post sees every post committed before it and the journal is one serial order: the
hash chain needs that anyway. Posts are short; the lock costs little at a tournament's
rate of stake changes. Under a stricter isolation level, or when a caller's own locks
deadlock with it, the database answers with a serialization failure or deadlock, and
`serialised` retries the whole unit of work.

Append-only: journal rows are inserted, never updated or deleted. The projection
(`ledger_balances`) is updated in the same transaction as the postings and can be rebuilt
from the journal (`rebuild_projection`).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar, cast

from sqlalchemy import String, Table, delete, func, insert, select, text, type_coerce
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.models.ledger import LedgerBalance, LedgerPosting, LedgerTransaction
from crowdquant.db.session import is_busy, retry_pause, transaction
from crowdquant.ledger.accounts import AccountId
from crowdquant.ledger.audit import AuditReport, JournalRecord, Problem, audit
from crowdquant.ledger.chain import GENESIS_PREVIOUS_HASH, transaction_hash
from crowdquant.ledger.errors import (
    IdempotencyConflict,
    InvalidPosting,
    LedgerTampered,
    NoGenesis,
)
from crowdquant.ledger.interface import Entry, NewTransaction, Posting, Transaction
from crowdquant.ledger.rules import (
    GENESIS_EVENT_KEY,
    GENESIS_MEMO,
    apply,
    check_event_key,
    check_transaction,
    genesis_postings,
)
from crowdquant.money import Currency

LOCK_KEY = 0x63714C6564676572  # "cqLedger": the PostgreSQL advisory lock of the books
JOURNAL_PROBLEMS = frozenset({"chain", "hash", "rule", "minting", "unbalanced", "negative"})
"""Problems in the journal itself; the rest ("projection", "conservation") are in the
balances table and `rebuild_projection` repairs them."""
T = TypeVar("T")

_TRANSACTIONS = cast(Table, LedgerTransaction.__table__)
_POSTINGS = cast(Table, LedgerPosting.__table__)


def lock_books(session: Session) -> None:
    """Take the ledger's write lock in `session`'s transaction (held until it ends)."""
    dialect = session.connection().dialect.name
    if dialect == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(LOCK_KEY)))
    elif dialect == "sqlite":
        # Any write takes SQLite's database write lock (waiting up to the busy timeout) and
        # starts the transaction on the newest snapshot; this one changes no row.
        session.execute(text("UPDATE ledger_balances SET balance = balance WHERE 0"))


def serialised(
    sessions: sessionmaker[Session],
    work: Callable[[Session], T],
    *,
    attempts: int = 8,
    pause: float = 0.02,
) -> T:
    """`work` in one transaction, run again from the start (up to `attempts` times, with a
    growing random pause) when the database reports a serialization failure, a deadlock
    or a busy lock. `work` must have no effect outside the session."""
    for attempt in range(1, attempts + 1):
        try:
            with transaction(sessions) as session:
                return work(session)
        except DBAPIError as exc:
            if attempt == attempts or not is_busy(exc):
                raise
            time.sleep(retry_pause(attempt, base=pause))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _batches(names: list[str], size: int = 500) -> Iterable[list[str]]:
    """`names` in slices small enough for one query's parameters."""
    return (names[start : start + size] for start in range(0, len(names), size))


def _account(text: str) -> AccountId:
    try:
        return AccountId.parse(text)
    except ValueError as exc:
        raise LedgerTampered(f"the books name an unknown account: {exc}") from None


class SqlLedger:
    """The `Ledger` protocol over the `ledger_*` tables, in the caller's session."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock

    # --- writing ---------------------------------------------------------------------------

    def hold(self, session: Session) -> None:
        lock_books(session)

    def genesis(self, session: Session) -> Transaction:
        lock_books(session)
        recorded = self._find_row(session, GENESIS_EVENT_KEY)
        if recorded is not None:
            genesis = self._load(session, recorded)
            if genesis.sequence != 1 or genesis.postings != genesis_postings():
                raise LedgerTampered("the recorded genesis is not the fixed supply")
            return genesis
        if self._head(session) is not None:
            raise LedgerTampered("the journal has transactions but no genesis")
        postings = genesis_postings()
        rows = self._projection_rows(session, Currency.NMR, [p.account for p in postings])
        updated = apply(Currency.NMR, postings, {a: row.balance for a, row in rows.items()})
        return self._append(
            session, GENESIS_EVENT_KEY, Currency.NMR, postings, GENESIS_MEMO, None, rows, updated
        )

    def post(
        self,
        session: Session,
        event_key: str,
        currency: Currency,
        postings: Iterable[Posting],
        *,
        memo: str = "",
    ) -> Transaction:
        (recorded,) = self.post_many(
            session, [NewTransaction(event_key, currency, tuple(postings), memo)]
        )
        return recorded

    def post_many(
        self, session: Session, transactions: Sequence[NewTransaction]
    ) -> list[Transaction]:
        """Each of `transactions` as `post` records it, in order, with one lock, one look-up
        of the event keys, one check of the chain's head, one read of the balances per
        currency and one insert per table; nothing is written if one is refused."""
        checked = [
            check_transaction(new.event_key, new.currency, new.postings, new.memo)
            for new in transactions
        ]
        if not checked:
            return []
        lock_books(session)
        recorded = self._find_rows(session, {new.event_key for new in transactions})
        done: dict[str, Transaction] = {}
        head: LedgerTransaction | None = None
        rows: dict[Currency, dict[AccountId, LedgerBalance]] = {}
        balances: dict[tuple[Currency, AccountId], int] = {}
        last_sequence: dict[tuple[Currency, AccountId], int] = {}
        sequence, previous_hash = 0, GENESIS_PREVIOUS_HASH
        journal: list[dict[str, object]] = []
        postings: list[dict[str, object]] = []
        results: list[Transaction] = []
        for new, (currency, moved) in zip(transactions, checked, strict=True):
            earlier = done.get(new.event_key)
            if earlier is None and new.event_key in recorded:
                earlier = self._load(session, recorded[new.event_key])
            if earlier is not None:
                if earlier.currency != currency or earlier.postings != moved:
                    raise IdempotencyConflict(
                        f"event {new.event_key!r} is already recorded (transaction"
                        f" {earlier.sequence}) with other postings",
                        event_key=new.event_key,
                    )
                results.append(earlier)
                continue
            if head is None:
                head = self._head(session)
                if head is None:
                    raise NoGenesis()
                self._check_head(session, head)
                sequence, previous_hash = head.sequence, head.hash
                rows = self._projection_rows_of(session, checked)
                balances = {
                    (cur, account): row.balance
                    for cur, found in rows.items()
                    for account, row in found.items()
                }
            held = {p.account: balances.get((currency, p.account), 0) for p in moved}
            updated = apply(currency, moved, held)
            sequence += 1
            transaction = self._record(
                new.event_key, currency, moved, new.memo, sequence, previous_hash
            )
            transaction_id = uuid.uuid4()
            journal.append(_journal_row(transaction_id, transaction))
            postings += [
                {"transaction_id": transaction_id, "account": str(p.account), "amount": p.amount}
                for p in moved
            ]
            for account, balance in updated.items():
                balances[(currency, account)] = balance
                last_sequence[(currency, account)] = sequence
            previous_hash = transaction.hash
            done[new.event_key] = transaction
            results.append(transaction)
        if journal:
            session.execute(insert(_TRANSACTIONS), journal)
            session.execute(insert(_POSTINGS), postings)
            self._write_balances(
                session,
                rows,
                {key: (balances[key], last) for key, last in last_sequence.items()},
            )
        return results

    def rebuild_projection(self, session: Session) -> int:
        """Recompute `ledger_balances` from the journal; how many balances it corrected.

        Refuses (`LedgerTampered`) if the journal itself does not verify: rebuilding from a
        rewritten journal would hide the evidence.
        """
        lock_books(session)
        report = self.verify(session)
        broken = [p.message for p in report.problems if p.kind in JOURNAL_PROBLEMS]
        if broken:
            raise LedgerTampered(
                "the journal does not verify; the projection is left as it is",
                problems=tuple(broken),
            )
        stored = self._projection(session)
        rebuilt: dict[tuple[str, str], tuple[int, int]] = {}
        for record in self._journal(session)[0]:
            for account, amount in record.postings:
                balance, _ = rebuilt.get((account, record.currency), (0, 0))
                rebuilt[(account, record.currency)] = (balance + amount, record.sequence)
        session.execute(delete(LedgerBalance))
        session.add_all(
            LedgerBalance(
                account=account,
                currency=Currency(currency),
                balance=balance,
                last_sequence=sequence,
            )
            for (account, currency), (balance, sequence) in sorted(rebuilt.items())
        )
        session.flush()
        holdings = set(stored) | set(rebuilt)
        return sum(stored.get(key, 0) != rebuilt.get(key, (0, 0))[0] for key in holdings)

    def _append(
        self,
        session: Session,
        event_key: str,
        currency: Currency,
        postings: tuple[Posting, ...],
        memo: str,
        head: LedgerTransaction | None,
        rows: dict[AccountId, LedgerBalance],
        updated: dict[AccountId, int],
    ) -> Transaction:
        sequence = 1 if head is None else head.sequence + 1
        previous_hash = GENESIS_PREVIOUS_HASH if head is None else head.hash
        recorded = self._record(event_key, currency, postings, memo, sequence, previous_hash)
        transaction_id = uuid.uuid4()
        # two Core inserts: the journal row, then its postings (no ORM unit of work)
        session.execute(insert(_TRANSACTIONS), _journal_row(transaction_id, recorded))
        session.execute(
            insert(_POSTINGS),
            [
                {"transaction_id": transaction_id, "account": str(p.account), "amount": p.amount}
                for p in postings
            ],
        )
        self._write_balances(
            session,
            {currency: rows},
            {(currency, account): (balance, sequence) for account, balance in updated.items()},
        )
        return recorded

    def _record(
        self,
        event_key: str,
        currency: Currency,
        postings: tuple[Posting, ...],
        memo: str,
        sequence: int,
        previous_hash: str,
    ) -> Transaction:
        """The transaction at `sequence` after `previous_hash`, stamped now and hashed."""
        created_at = self._clock.now()
        digest = transaction_hash(
            previous_hash=previous_hash,
            sequence=sequence,
            event_key=event_key,
            currency=currency.value,
            memo=memo,
            created_at=created_at,
            postings=[(str(p.account), p.amount) for p in postings],
        )
        return Transaction(
            sequence=sequence,
            event_key=event_key,
            currency=currency,
            postings=postings,
            memo=memo,
            created_at=created_at,
            previous_hash=previous_hash,
            hash=digest,
        )

    def _write_balances(
        self,
        session: Session,
        rows: dict[Currency, dict[AccountId, LedgerBalance]],
        updated: dict[tuple[Currency, AccountId], tuple[int, int]],
    ) -> None:
        """The projection follows the postings, in the same transaction: each (currency,
        account) in `updated` gets its (balance, last sequence), in its row of `rows` or a
        new one."""
        for (currency, account), (balance, sequence) in updated.items():
            row = rows.get(currency, {}).get(account)
            if row is None:
                row = LedgerBalance(account=str(account), currency=currency)
                session.add(row)
            row.balance, row.last_sequence = balance, sequence
        session.flush()

    # --- reading ---------------------------------------------------------------------------

    def find(self, session: Session, event_key: str) -> Transaction | None:
        check_event_key(event_key)
        row = self._find_row(session, event_key)
        return None if row is None else self._load(session, row)

    def balance(self, session: Session, account: AccountId, currency: Currency) -> int:
        currency = Currency(currency)
        if not account.holds(currency):
            raise InvalidPosting(f"{account} cannot hold {currency}")
        found = session.execute(
            select(LedgerBalance.balance).where(
                LedgerBalance.account == str(account), LedgerBalance.currency == currency
            )
        ).scalar_one_or_none()
        return 0 if found is None else found

    def balances_of(
        self, session: Session, accounts: Iterable[AccountId], currency: Currency
    ) -> dict[AccountId, int]:
        currency = Currency(currency)
        by_name = {str(account): account for account in accounts}
        for account in by_name.values():
            if not account.holds(currency):
                raise InvalidPosting(f"{account} cannot hold {currency}")
        found = dict.fromkeys(by_name.values(), 0)
        for names in _batches(sorted(by_name)):
            rows = session.execute(
                select(LedgerBalance.account, LedgerBalance.balance).where(
                    LedgerBalance.account.in_(names), LedgerBalance.currency == currency
                )
            )
            found |= {by_name[name]: balance for name, balance in rows}
        return found

    def balances(self, session: Session, currency: Currency) -> dict[AccountId, int]:
        rows = session.execute(
            select(LedgerBalance.account, LedgerBalance.balance)
            .where(LedgerBalance.currency == Currency(currency))
            .order_by(LedgerBalance.account)
        ).all()
        return {_account(account): balance for account, balance in rows}

    def history(
        self, session: Session, account: AccountId, currency: Currency | None = None
    ) -> list[Entry]:
        query = (
            select(
                LedgerTransaction.sequence,
                LedgerTransaction.event_key,
                LedgerTransaction.currency,
                LedgerPosting.amount,
                LedgerTransaction.created_at,
                LedgerTransaction.memo,
            )
            .join(LedgerPosting, LedgerPosting.transaction_id == LedgerTransaction.id)
            .where(LedgerPosting.account == str(account))
            .order_by(LedgerTransaction.sequence)
        )
        if currency is not None:
            query = query.where(LedgerTransaction.currency == Currency(currency))
        running: dict[Currency, int] = defaultdict(int)
        entries: list[Entry] = []
        for sequence, event_key, in_currency, amount, created_at, memo in session.execute(query):
            running[in_currency] += amount
            entries.append(
                Entry(
                    sequence, event_key, in_currency, amount, running[in_currency], created_at, memo
                )
            )
        return entries

    def verify(self, session: Session) -> AuditReport:
        try:
            records, orphans = self._journal(session)
            projection = self._projection(session)
        except (ValueError, TypeError, ArithmeticError, LookupError) as exc:
            return AuditReport(
                problems=(Problem("chain", f"the journal cannot be read: {exc}"),),
                transactions=0,
                head_sequence=0,
                head_hash=GENESIS_PREVIOUS_HASH,
                minted=0,
                burned=0,
                circulating=0,
                usd_funded=0,
            )
        report = audit(records, projection)
        if orphans:
            orphaned = Problem(
                "chain", f"{orphans} postings belong to no transaction: a transaction was removed"
            )
            report = dataclasses.replace(report, problems=(*report.problems, orphaned))
        return report

    # --- rows ------------------------------------------------------------------------------

    def _find_row(self, session: Session, event_key: str) -> LedgerTransaction | None:
        return session.execute(
            select(LedgerTransaction)
            .where(LedgerTransaction.event_key == event_key)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def _find_rows(self, session: Session, event_keys: set[str]) -> dict[str, LedgerTransaction]:
        found: dict[str, LedgerTransaction] = {}
        for keys in _batches(sorted(event_keys)):
            found |= {
                row.event_key: row
                for row in session.execute(
                    select(LedgerTransaction)
                    .where(LedgerTransaction.event_key.in_(keys))
                    .execution_options(populate_existing=True)
                ).scalars()
            }
        return found

    def _projection_rows_of(
        self, session: Session, checked: list[tuple[Currency, tuple[Posting, ...]]]
    ) -> dict[Currency, dict[AccountId, LedgerBalance]]:
        """The balance rows of every account the transactions move, per currency."""
        accounts: dict[Currency, set[AccountId]] = defaultdict(set)
        for currency, moved in checked:
            accounts[currency].update(p.account for p in moved)
        return {
            currency: self._projection_rows(session, currency, sorted(found, key=str))
            for currency, found in sorted(accounts.items(), key=lambda item: item[0].value)
        }

    def _head(self, session: Session) -> LedgerTransaction | None:
        return session.execute(
            select(LedgerTransaction)
            .order_by(LedgerTransaction.sequence.desc())
            .limit(1)
            .execution_options(populate_existing=True)
        ).scalar_one_or_none()

    def _postings(self, session: Session, row: LedgerTransaction) -> list[tuple[str, int]]:
        found = session.execute(
            select(LedgerPosting.account, LedgerPosting.amount).where(
                LedgerPosting.transaction_id == row.id
            )
        ).all()
        # Sorted here, not by the database, whose collation may order text differently.
        return sorted((account, amount) for account, amount in found)

    def _check_head(self, session: Session, head: LedgerTransaction) -> None:
        """Refuse to extend a chain whose last link does not match its hash."""
        recomputed = transaction_hash(
            previous_hash=head.previous_hash,
            sequence=head.sequence,
            event_key=head.event_key,
            currency=Currency(head.currency).value,
            memo=head.memo,
            created_at=head.created_at,
            postings=self._postings(session, head),
        )
        if recomputed != head.hash:
            raise LedgerTampered(
                f"the journal's last transaction ({head.sequence}, {head.event_key}) does not"
                " match its hash; nothing is posted until `crowdquant ledger audit` is sound"
            )

    def _load(self, session: Session, row: LedgerTransaction) -> Transaction:
        return Transaction(
            sequence=row.sequence,
            event_key=row.event_key,
            currency=Currency(row.currency),
            postings=tuple(
                Posting(_account(account), amount)
                for account, amount in self._postings(session, row)
            ),
            memo=row.memo,
            created_at=row.created_at,
            previous_hash=row.previous_hash,
            hash=row.hash,
        )

    def _projection_rows(
        self, session: Session, currency: Currency, accounts: Iterable[AccountId]
    ) -> dict[AccountId, LedgerBalance]:
        by_name = {str(account): account for account in accounts}
        rows = session.execute(
            select(LedgerBalance)
            .where(LedgerBalance.currency == currency, LedgerBalance.account.in_(by_name))
            .order_by(LedgerBalance.account)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).scalars()
        return {by_name[row.account]: row for row in rows}

    def _projection(self, session: Session) -> dict[tuple[str, str], int]:
        rows = session.execute(
            select(
                LedgerBalance.account,
                type_coerce(LedgerBalance.currency, String()),
                LedgerBalance.balance,
            )
        ).all()
        return {(account, currency): balance for account, currency, balance in rows}

    def _journal(self, session: Session) -> tuple[list[JournalRecord], int]:
        """The journal in sequence order, and how many postings belong to no transaction."""
        postings: dict[object, list[tuple[str, int]]] = defaultdict(list)
        for transaction_id, account, amount in session.execute(
            select(LedgerPosting.transaction_id, LedgerPosting.account, LedgerPosting.amount)
        ):
            postings[transaction_id].append((account, amount))
        rows = session.execute(
            select(
                LedgerTransaction.id,
                LedgerTransaction.sequence,
                LedgerTransaction.event_key,
                type_coerce(LedgerTransaction.currency, String()).label("currency"),
                LedgerTransaction.memo,
                LedgerTransaction.created_at,
                LedgerTransaction.previous_hash,
                LedgerTransaction.hash,
            ).order_by(LedgerTransaction.sequence)
        ).all()
        journal = [
            JournalRecord(
                sequence=row.sequence,
                event_key=row.event_key,
                currency=row.currency,
                memo=row.memo,
                created_at=row.created_at,
                previous_hash=row.previous_hash,
                hash=row.hash,
                postings=tuple(sorted(postings.pop(row.id, []))),
            )
            for row in rows
        ]
        orphans = sum(len(found) for found in postings.values())
        return journal, orphans


def _journal_row(transaction_id: uuid.UUID, recorded: Transaction) -> dict[str, object]:
    return {
        "id": transaction_id,
        "sequence": recorded.sequence,
        "event_key": recorded.event_key,
        "currency": recorded.currency,
        "memo": recorded.memo,
        "created_at": recorded.created_at,
        "previous_hash": recorded.previous_hash,
        "hash": recorded.hash,
    }
