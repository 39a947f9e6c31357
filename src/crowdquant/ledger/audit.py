"""Checking the books from the journal alone, for any backend.

`audit` takes the journal as stored (raw strings, nothing trusted) and the balances
projection, and reports every problem it finds:

- the chain: sequence numbers 1, 2, 3, ... with no gap; each transaction names the previous
  one's hash; each hash recomputes from the transaction's content (`chain`);
- the genesis: transaction 1 mints exactly the fixed supply from `genesis` into the
  treasury, and no other transaction touches the genesis account or takes from `burned`;
- each transaction: a known currency, accounts that exist and hold it, postings summing
  to zero;
- replaying the journal in order never takes an account below zero (except genesis for
  NMR and operator funding for USD);
- the projection equals the balances the replay gives, account by account;
- conservation: NMR outside `genesis` and `burned` = the genesis supply − burned, and every
  currency's balances sum to zero.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from crowdquant.ledger.accounts import BURNED, GENESIS, OPERATOR_FUNDING, TREASURY, AccountId
from crowdquant.ledger.chain import GENESIS_PREVIOUS_HASH, transaction_hash
from crowdquant.money import GENESIS_SUPPLY, Currency, format_amount

SOUND = "the books are sound"

Holding = tuple[str, str]
"""(account, currency) as stored."""


@dataclass(frozen=True)
class JournalRecord:
    """One transaction exactly as the backend stores it."""

    sequence: int
    event_key: str
    currency: str
    memo: str
    created_at: datetime
    previous_hash: str
    hash: str
    postings: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the books: a stable `kind` and a sentence for the operator."""

    kind: str
    message: str
    sequence: int | None = None

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class AuditReport:
    """What an audit found. `sound` is the verdict; `problems` lists every reason it is not."""

    problems: tuple[Problem, ...]
    transactions: int
    head_sequence: int
    head_hash: str
    minted: int
    """NMR units minted, from the journal (the genesis supply once started, else 0)."""
    burned: int
    """NMR units in the burn sink, from the journal."""
    circulating: int
    """NMR units held outside `genesis` and `burned`, from the balances projection."""
    usd_funded: int
    """Cents the operator has put in (minus operator funding's balance), from the journal."""

    @property
    def sound(self) -> bool:
        return not self.problems

    @property
    def verdict(self) -> str:
        if self.sound:
            return SOUND
        count = len(self.problems)
        return f"the books are NOT sound: {count} problem{'s' if count != 1 else ''} found"


def _parse_account(text: str) -> AccountId | None:
    try:
        return AccountId.parse(text)
    except ValueError:
        return None


def _parse_currency(text: str) -> Currency | None:
    try:
        return Currency(text)
    except ValueError:
        return None


def _amount(amount: int, currency: Currency | None) -> str:
    return str(amount) if currency is None else format_amount(amount, currency)


def _is_genesis(record: JournalRecord) -> bool:
    return (
        record.event_key == "genesis"
        and record.currency == Currency.NMR.value
        and sorted(record.postings)
        == sorted(((str(GENESIS), -GENESIS_SUPPLY), (str(TREASURY), GENESIS_SUPPLY)))
    )


def replay(records: Iterable[JournalRecord]) -> dict[Holding, int]:
    """The balances the journal gives, every posting applied in order; no checks."""
    balances: dict[Holding, int] = defaultdict(int)
    for record in records:
        for account, amount in record.postings:
            balances[(account, record.currency)] += amount
    return dict(balances)


def _check_chain(records: list[JournalRecord], problems: list[Problem]) -> None:
    expected_sequence, previous_hash = 1, GENESIS_PREVIOUS_HASH
    for record in records:
        where = f"transaction {record.sequence} ({record.event_key})"
        if record.sequence != expected_sequence:
            problems.append(
                Problem(
                    "chain",
                    f"{where} is numbered {record.sequence} where {expected_sequence} was"
                    " expected: a transaction was removed, inserted or renumbered",
                    record.sequence,
                )
            )
        if record.previous_hash != previous_hash:
            problems.append(
                Problem(
                    "chain",
                    f"{where} does not follow the hash of the transaction before it: the"
                    " journal was reordered, or a transaction removed, inserted or rewritten",
                    record.sequence,
                )
            )
        try:
            recomputed = transaction_hash(
                previous_hash=record.previous_hash,
                sequence=record.sequence,
                event_key=record.event_key,
                currency=record.currency,
                memo=record.memo,
                created_at=record.created_at,
                postings=record.postings,
            )
        except ValueError as exc:
            recomputed = f"unhashable: {exc}"
        if recomputed != record.hash:
            problems.append(
                Problem(
                    "hash",
                    f"{where} does not match its recorded hash: its postings, amounts,"
                    " accounts, key, memo or time were changed after it was written",
                    record.sequence,
                )
            )
        expected_sequence, previous_hash = record.sequence + 1, record.hash


def _check_transactions(
    records: list[JournalRecord], problems: list[Problem]
) -> dict[Holding, int]:
    running: dict[Holding, int] = defaultdict(int)
    for index, record in enumerate(records):
        where = f"transaction {record.sequence} ({record.event_key})"
        currency = _parse_currency(record.currency)
        if currency is None:
            problems.append(
                Problem("rule", f"{where} is in {record.currency!r}, no currency", record.sequence)
            )
        if index == 0 and not _is_genesis(record):
            problems.append(
                Problem(
                    "minting",
                    f"{where} comes first but is not the genesis (the fixed supply from"
                    " `genesis` to the treasury)",
                    record.sequence,
                )
            )
        elif index > 0 and record.event_key == "genesis":
            problems.append(Problem("minting", f"{where} is a second genesis", record.sequence))
        total = sum(amount for _, amount in record.postings)
        if total != 0:
            problems.append(
                Problem(
                    "unbalanced",
                    f"{where}: its postings sum to {_amount(total, currency)}, not zero",
                    record.sequence,
                )
            )
        if not record.postings:
            problems.append(Problem("rule", f"{where} has no postings", record.sequence))
        for account_text, amount in record.postings:
            account = _parse_account(account_text)
            if account is None:
                problems.append(
                    Problem(
                        "rule", f"{where} posts to {account_text!r}, no account", record.sequence
                    )
                )
            elif currency is not None and not account.holds(currency):
                problems.append(
                    Problem("rule", f"{where}: {account} cannot hold {currency}", record.sequence)
                )
            if index > 0 and account == GENESIS:
                problems.append(
                    Problem(
                        "minting",
                        f"{where} touches the genesis account: only the genesis mints",
                        record.sequence,
                    )
                )
            if account == BURNED and amount < 0:
                problems.append(
                    Problem("minting", f"{where} takes NMR out of the burn sink", record.sequence)
                )
            holding = (account_text, record.currency)
            running[holding] += amount
            if (
                running[holding] < 0
                and account is not None
                and currency is not None
                and not account.may_go_negative(currency)
            ):
                problems.append(
                    Problem(
                        "negative",
                        f"{where} takes {account} to {_amount(running[holding], currency)}",
                        record.sequence,
                    )
                )
    return dict(running)


def _check_projection(
    rebuilt: Mapping[Holding, int], projection: Mapping[Holding, int], problems: list[Problem]
) -> None:
    for account, currency_text in sorted(set(rebuilt) | set(projection)):
        stored = projection.get((account, currency_text), 0)
        replayed = rebuilt.get((account, currency_text), 0)
        if stored == replayed:
            continue
        currency = _parse_currency(currency_text)
        problems.append(
            Problem(
                "projection",
                f"{account} holds {_amount(stored, currency)} in the balances table, but the"
                f" journal gives {_amount(replayed, currency)}",
            )
        )
    for (account_text, currency_text), balance in sorted(projection.items()):
        holder, held = _parse_account(account_text), _parse_currency(currency_text)
        if (
            balance < 0
            and holder is not None
            and held is not None
            and not holder.may_go_negative(held)
        ):
            problems.append(
                Problem(
                    "projection",
                    f"{holder} has a negative balance in the balances table:"
                    f" {_amount(balance, held)}",
                )
            )


def _check_conservation(
    minted: int, burned: int, projection: Mapping[Holding, int], problems: list[Problem]
) -> int:
    totals: dict[str, int] = defaultdict(int)
    circulating = 0
    for (account, currency), balance in projection.items():
        totals[currency] += balance
        if currency == Currency.NMR.value and account not in (str(GENESIS), str(BURNED)):
            circulating += balance
    for currency, total in sorted(totals.items()):
        if total != 0:
            problems.append(
                Problem(
                    "conservation",
                    f"the {currency} balances sum to {_amount(total, _parse_currency(currency))},"
                    " not zero",
                )
            )
    if circulating != minted - burned:
        problems.append(
            Problem(
                "conservation",
                f"{format_amount(circulating, Currency.NMR)} is in circulation, but genesis −"
                f" burned = {format_amount(minted, Currency.NMR)} −"
                f" {format_amount(burned, Currency.NMR)}"
                f" = {format_amount(minted - burned, Currency.NMR)}",
            )
        )
    return circulating


def audit(records: Iterable[JournalRecord], projection: Mapping[Holding, int]) -> AuditReport:
    """Every problem with the journal `records` (in sequence order) and the `projection`."""
    journal = list(records)
    problems: list[Problem] = []
    _check_chain(journal, problems)
    rebuilt = _check_transactions(journal, problems)
    _check_projection(rebuilt, projection, problems)
    minted = GENESIS_SUPPLY if journal else 0
    burned = rebuilt.get((str(BURNED), Currency.NMR.value), 0)
    circulating = _check_conservation(minted, burned, projection, problems)
    head = journal[-1] if journal else None
    return AuditReport(
        problems=tuple(problems),
        transactions=len(journal),
        head_sequence=head.sequence if head else 0,
        head_hash=head.hash if head else GENESIS_PREVIOUS_HASH,
        minted=minted,
        burned=burned,
        circulating=circulating,
        usd_funded=-rebuilt.get((str(OPERATOR_FUNDING), Currency.USD.value), 0),
    )


def describe(report: AuditReport) -> list[str]:
    """The report's figures, one line each, for a person."""
    count = report.transactions
    return [
        f"journal: {count} transaction{'' if count == 1 else 's'};"
        f" head {report.head_sequence} {report.head_hash}",
        f"NMR: {format_amount(report.minted, Currency.NMR)} minted,"
        f" {format_amount(report.burned, Currency.NMR)} burned,"
        f" {format_amount(report.circulating, Currency.NMR)} in circulation",
        f"USD: {format_amount(report.usd_funded, Currency.USD)} funded by the operator",
    ]
