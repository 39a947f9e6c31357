"""`crowdquant ledger …`: the books' genesis, and their audit.

`grant` gives a participant NMR from the treasury; `fund-prizes` puts USD into a
tournament's prize pool (both idempotent on their `--reference`).

`genesis` mints the fixed supply (11,000,000 NMR) into the treasury, once; run again, it
says so and mints nothing. `audit` verifies the hash chain over the journal, rebuilds every
balance from the journal and compares it with the balances table, checks every rule and
conservation (NMR outside genesis and the burn sink = genesis − burned), and says plainly
whether the books are sound; if not it names every problem and exits with code 1.

`dispatch` sends the chain calls that committed posts queued (the `evm` backend), each once.

`compile-contracts` compiles the token and tournament contracts (Vyper) into their ABI and
bytecode; with `--check` it only says whether the written ones match a fresh compile.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from crowdquant.cli.data import _fail, console
from crowdquant.cli.operator import operator
from crowdquant.money import AmountError, Currency, console_amount, parse_usd

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from crowdquant.server.bootstrap import Infrastructure

ledger_app = typer.Typer(
    no_args_is_help=True,
    help="The books: their genesis, and their audit (hash chain, balances, conservation).",
)
T = TypeVar("T")


def _on_the_books(ops: Infrastructure, call: Callable[[Session], T]) -> T:
    """`call` in one transaction (retried if the database says so); a refusal, by the ledger
    or by a service, exits 1."""
    from crowdquant.ledger import LedgerError
    from crowdquant.ledger.sql import serialised
    from crowdquant.tournament.errors import ServiceError

    try:
        return serialised(ops.sessions, call)
    except (LedgerError, ServiceError) as exc:
        raise _fail(exc.message) from exc


@ledger_app.command("genesis")
def genesis() -> None:
    """Mint the fixed supply, 11,000,000 NMR, into the treasury (once; again does nothing)."""
    from crowdquant.ledger import GENESIS_EVENT_KEY, TREASURY

    with operator() as ops:
        books = ops.ledger

        def run(session: Session) -> tuple[bool, int, str, str]:
            new = books.find(session, GENESIS_EVENT_KEY) is None
            recorded = books.genesis(session)
            when = f"{recorded.created_at:%Y-%m-%d %H:%M} UTC"
            return new, recorded.amount(TREASURY), when, recorded.hash

        new, supply, when, digest = _on_the_books(ops, run)
    amount = console_amount(supply, Currency.NMR)
    if new:
        console.print(f"genesis: minted [bold]{amount}[/] into the treasury; no more, ever")
    else:
        console.print(f"the genesis was already recorded at {when} ({amount}); nothing minted")
    console.print(f"genesis hash {digest}")


@ledger_app.command("grant")
def grant(
    username: Annotated[str, typer.Argument(help="the participant's username")],
    amount: Annotated[str, typer.Argument(help="NMR, e.g. 100 or 2.5")],
    reference: Annotated[
        str | None, typer.Option(help="idempotency reference (default: a new one)")
    ] = None,
) -> None:
    """Give a participant NMR from the treasury."""
    from crowdquant.ledger import wallet
    from crowdquant.tournament.accounts import get_account
    from crowdquant.tournament.staking import grant_nmr, parse_nmr

    with operator() as ops:
        books = ops.ledger

        def run(session: Session) -> int:
            account = get_account(session, username)
            units = parse_nmr(amount)
            grant_nmr(session, books, account, units, reference or uuid.uuid4().hex)
            return books.balance(session, wallet(account.id), Currency.NMR)

        balance = _on_the_books(ops, run)
    console.print(f"{username}'s wallet holds {console_amount(balance, Currency.NMR)}")


@ledger_app.command("fund-prizes")
def fund_prizes(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
    usd: Annotated[str, typer.Option(help="US dollars, e.g. 1000 or 3603.05")],
    reference: Annotated[
        str | None, typer.Option(help="idempotency reference (default: a new one)")
    ] = None,
) -> None:
    """Put USD into a tournament's prize pool (the 2017 rules' awards and prizes)."""
    from crowdquant.ledger import prize_pool
    from crowdquant.tournament.funding import fund_prize_pool
    from crowdquant.tournament.tournaments import get_tournament

    try:
        cents = parse_usd(usd)
    except AmountError as exc:
        raise _fail(str(exc)) from None
    with operator() as ops:
        books = ops.ledger

        def run(session: Session) -> int:
            found = get_tournament(session, tournament)
            fund_prize_pool(session, books, found, cents, reference or uuid.uuid4().hex)
            return books.balance(session, prize_pool(found.id), Currency.USD)

        balance = _on_the_books(ops, run)
    console.print(
        f"tournament {tournament}'s prize pool holds {console_amount(balance, Currency.USD)}"
    )


@ledger_app.command("audit")
def audit() -> None:
    """Verify the hash chain, rebuild every balance from the journal, check conservation."""
    from rich.markup import escape

    from crowdquant.ledger.audit import describe

    with operator() as ops:
        report = _on_the_books(ops, ops.ledger.verify)
    for line in describe(report):
        console.print(escape(line), soft_wrap=True)
    if report.sound:
        console.print(f"[bold green]{report.verdict}[/]")
        return
    for problem in report.problems:
        console.print(f"[red]problem:[/] {escape(problem.message)}", soft_wrap=True)
    console.print(f"[bold red]{report.verdict}[/]")
    raise typer.Exit(1)


@ledger_app.command("compile-contracts")
def compile_contracts(
    build: Annotated[
        Path | None,
        typer.Option(help="where the ABI and bytecode go (default: the package's build folder)"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="write nothing; exit 1 if the written ones are stale")
    ] = False,
) -> None:
    """Compile the token and tournament contracts into their ABI and bytecode."""
    from crowdquant.ledger.evm.artifacts import BUILD, stale_artifacts, write_artifacts

    folder = build or BUILD
    if check:
        stale = stale_artifacts(folder)
        if stale:
            raise _fail(f"stale or missing in {folder}: {', '.join(stale)}; compile them again")
        console.print(f"the contracts in {folder} match their sources")
        return
    for path in write_artifacts(folder):
        console.print(f"wrote {path}")


@ledger_app.command("index")
def index() -> None:
    """Mirror the contracts' new events into the database, once each (the `evm` backend)."""
    from crowdquant.db.session import transaction
    from crowdquant.ledger.evm.backend import EvmLedger

    with operator() as ops:
        books = ops.ledger
        if not isinstance(books, EvmLedger):
            console.print("the books are kept in the database only: nothing to index")
            return
        with transaction(ops.sessions) as session:
            indexed = books.index(session)
    console.print(
        f"blocks {indexed.from_block} to {indexed.to_block}:"
        f" {indexed.recorded} event{'s' if indexed.recorded != 1 else ''} recorded"
    )


@ledger_app.command("dispatch")
def dispatch() -> None:
    """Send the chain calls queued by committed posts, each once (the `evm` backend)."""
    from crowdquant.ledger.evm.backend import EvmLedger

    with operator() as ops:
        books = ops.ledger
        if not isinstance(books, EvmLedger):
            console.print("the books are kept in the database only: nothing to send")
            return
        with ops.sessions() as session:
            sent = books.dispatch(session)
    for done in sent:
        console.print(f"{done.business_key}: {done.tx_hash} in block {done.block_number}")
    console.print(f"{len(sent)} chain call{'s' if len(sent) != 1 else ''} sent")
