"""Operator commands: `crowdquant db|tournament|account|key|round …` and `crowdquant serve`.

Each command opens the configured database (migrated to head first, the home directory
created if needed), runs one service call in one transaction and prints the result. A
service that refuses (a taken name, a round in the wrong state, ...) is reported as an
error with exit code 1, and its transaction is rolled back: nothing changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from crowdquant.cli.data import _fail, console
from crowdquant.db.enums import Cadence, Rules

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.orm import Session

    from crowdquant.clock import Clock, ManualClock
    from crowdquant.data.release import DatasetVersion
    from crowdquant.db.models import Account, Round, RoundResult, Tournament
    from crowdquant.server.bootstrap import Infrastructure
    from crowdquant.server.serve import Server, Workers
    from crowdquant.settings import Settings
    from crowdquant.tournament.lifecycle import RoundLifecycle

db_app = typer.Typer(no_args_is_help=True, help="The database: migrations.")
tournament_app = typer.Typer(no_args_is_help=True, help="Create and list tournaments.")
account_app = typer.Typer(no_args_is_help=True, help="Participants' accounts.")
key_app = typer.Typer(no_args_is_help=True, help="API keys (numerapi's public id and secret).")
round_app = typer.Typer(
    no_args_is_help=True, help="Open, close, resolve and list rounds by hand; their results."
)

T = TypeVar("T")


# --- opening the database and running one service call ---------------------------------------


def _message(exc: Exception) -> str:
    return str(getattr(exc, "message", None) or exc)


@contextmanager
def operator(
    settings: Settings | None = None, clock: Clock | None = None
) -> Iterator[Infrastructure]:
    """The configured database, migrated to head, for the block; the engine closed after."""
    from crowdquant.clock import SystemClock
    from crowdquant.server.bootstrap import MigrationError, bootstrap
    from crowdquant.settings import Settings

    try:
        infra = bootstrap(settings or Settings(), clock or SystemClock())
    except MigrationError as exc:
        raise _fail(str(exc)) from exc
    try:
        yield infra
    finally:
        infra.close()


def _lifecycle(ops: Infrastructure) -> RoundLifecycle:
    """The round lifecycle that freezes stakes at close and pays them at resolution."""
    from crowdquant.tournament.lifecycle import RoundLifecycle

    return RoundLifecycle(ops.ledger, ops.clock)


def _in_transaction(ops: Infrastructure, call: Callable[[Session], T]) -> T:
    """`call` in one transaction; a service's refusal rolls it back and exits with code 1."""
    from crowdquant.db.session import transaction
    from crowdquant.server.serve import SERVICE_ERRORS

    try:
        with transaction(ops.sessions) as session:
            return call(session)
    except SERVICE_ERRORS as exc:
        raise _fail(_message(exc)) from exc


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else f"{moment:%Y-%m-%d %H:%M} UTC"


# --- db ----------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Migrate the database to the newest schema."""
    from crowdquant.db import migrate
    from crowdquant.server.bootstrap import printable_url
    from crowdquant.settings import Settings

    settings = Settings()
    with operator(settings):
        revision = migrate.current(settings.database)
    console.print(f"database {printable_url(settings.database)} is at revision [bold]{revision}[/]")


# --- tournaments ---------------------------------------------------------------------------------


def create_published_tournament(
    ops: Infrastructure,
    session: Session,
    number: int,
    name: str,
    rules: Rules,
    cadence: Cadence,
    version: DatasetVersion,
    settings: dict[str, Any] | None = None,
) -> tuple[Tournament, list[str]]:
    """Create a tournament on `version` (with `settings`) and publish the version's files, and
    its validation meta model file (the blend until rounds resolve); their names."""
    from crowdquant.tournament.datasets import publish_dataset_version
    from crowdquant.tournament.meta_model_file import META_MODEL_FILE, publish_meta_model
    from crowdquant.tournament.tournaments import create_tournament

    tournament = create_tournament(
        session, ops.clock, number, name, rules, cadence, version, settings
    )
    with console.status(f"publishing dataset version {version.version}"):
        files = publish_dataset_version(session, ops.clock, ops.storage, version)
        publish_meta_model(session, ops.clock, ops.storage, version, tournament, _no_rounds)
    return tournament, [row.filename for row in files] + [META_MODEL_FILE]


def _no_rounds(round_: Round) -> pd.Series:
    raise AssertionError("a new tournament has no resolved round")


@tournament_app.command("create")
def tournament_create(
    number: Annotated[int, typer.Option(help="the tournament's number (numerapi's tournament)")],
    name: Annotated[str, typer.Option(help="a short name, e.g. classic")],
    dataset: Annotated[str, typer.Option(help="a built dataset version (crowdquant data build)")],
    cadence: Annotated[Cadence, typer.Option(help="how often rounds open")] = Cadence.WEEKLY,
    rules: Annotated[Rules, typer.Option(help="scoring and payout rules")] = Rules.CLASSIC,
    live: Annotated[
        str,
        typer.Option(
            help="open: publish each round's live features; closed: never publish them,"
            " only uploaded models see them, in the sandbox"
        ),
    ] = "open",
) -> None:
    """Create a tournament and publish its dataset version's files for download."""
    from crowdquant.data.release import DatasetVersion, ReleaseError
    from crowdquant.settings import Settings

    settings = Settings()
    try:
        version = DatasetVersion.open(dataset, settings.datasets_dir, settings.operator_dir)
    except ReleaseError as exc:
        raise _fail(f"{exc} (build it with `crowdquant data build --version {dataset}`)") from exc
    with operator(settings) as ops:
        tournament, files = _in_transaction(
            ops,
            lambda session: create_published_tournament(
                ops, session, number, name, rules, cadence, version, {"live": live}
            ),
        )
    console.print(
        f"created tournament [bold]{tournament.number}[/] ({tournament.name}): "
        f"{tournament.cadence} rounds, {tournament.rules} rules,"
        f" dataset {tournament.dataset_version}, {live} live"
    )
    console.print(f"published {len(files)} files: {', '.join(files)}")


@tournament_app.command("list")
def tournament_list() -> None:
    """Every tournament with its newest round and the other names its dataset is served as."""
    from rich.table import Table

    from crowdquant.tournament.datasets import aliases_by_version
    from crowdquant.tournament.live_mode import live_mode
    from crowdquant.tournament.rounds import current_round
    from crowdquant.tournament.tournaments import list_tournaments

    with operator() as ops:

        def rows(session: Session) -> list[tuple[str, ...]]:
            found: list[tuple[str, ...]] = []
            aliases = aliases_by_version(session)
            for tournament in list_tournaments(session):
                latest = current_round(session, tournament)
                newest = "-" if latest is None else f"{latest.number} ({latest.status})"
                found.append(
                    (
                        str(tournament.number),
                        tournament.name,
                        str(tournament.cadence),
                        str(tournament.rules),
                        tournament.dataset_version,
                        ", ".join(aliases.get(tournament.dataset_version, [])) or "-",
                        live_mode(tournament),
                        newest,
                    )
                )
            return found

        listed = _in_transaction(ops, rows)
    if not listed:
        console.print("no tournaments yet: create one with `crowdquant tournament create`")
        return
    table = Table(title="tournaments")
    for column in (
        "number",
        "name",
        "cadence",
        "rules",
        "dataset",
        "aliases",
        "live",
        "newest round",
    ):
        table.add_column(column)
    for row in listed:
        table.add_row(*row)
    console.print(table)


# --- accounts and keys ---------------------------------------------------------------------------


@account_app.command("create")
def account_create(
    username: Annotated[str, typer.Argument(help="3-32 characters a-z, 0-9 or _")],
    email: Annotated[str, typer.Option(help="the account's email address")],
    password: Annotated[
        str,
        typer.Option(
            prompt=True, confirmation_prompt=True, hide_input=True, help="prompted if unset"
        ),
    ],
    is_operator: Annotated[
        bool, typer.Option("--operator", help="may use the operator's web pages")
    ] = False,
) -> None:
    """Create a participant's account (or an operator's, with --operator)."""
    from crowdquant.tournament.accounts import sign_up

    with operator() as ops:

        def create(session: Session) -> Account:
            account = sign_up(session, ops.clock, username, email, password)
            account.is_operator = is_operator
            return account

        account = _in_transaction(ops, create)
    role = " (operator)" if account.is_operator else ""
    console.print(f"created account [bold]{account.username}[/] <{account.email}>{role}")


@account_app.command("operator")
def account_operator(
    username: Annotated[str, typer.Argument(help="whose account")],
    revoke: Annotated[bool, typer.Option("--revoke", help="take the role away")] = False,
) -> None:
    """Let an account use the operator's web pages (or no longer, with --revoke)."""
    from crowdquant.tournament.accounts import get_account

    with operator() as ops:

        def mark(session: Session) -> None:
            get_account(session, username).is_operator = not revoke

        _in_transaction(ops, mark)
    console.print(f"{username} {'is no longer' if revoke else 'is'} an operator")


@key_app.command("create")
def key_create(
    username: Annotated[str, typer.Argument(help="whose key")],
    name: Annotated[str, typer.Option(help="what the key is for, e.g. laptop")] = "",
    scopes: Annotated[str, typer.Option(help="comma-separated: read, upload, stake")] = "read",
) -> None:
    """Create an API key; its secret is shown once, here, and never again."""
    from crowdquant.tournament.accounts import create_api_key, get_account

    wanted = [scope.strip() for scope in scopes.split(",") if scope.strip()]
    with operator() as ops:
        key = _in_transaction(
            ops,
            lambda session: create_api_key(
                session, ops.clock, get_account(session, username), name, wanted
            ),
        )
    granted = ", ".join(sorted(scope.value for scope in key.scopes))
    console.print(f"API key for [bold]{username}[/] with scopes {granted}")
    console.print(f"public id:  {key.public_id}")
    console.print(f"secret key: {key.secret}")
    console.print(
        "[bold yellow]warning:[/] the secret key is shown only this once; store it now"
        " (only its hash is kept)."
    )


@key_app.command("revoke")
def key_revoke(
    username: Annotated[str, typer.Argument(help="whose key")],
    public_id: Annotated[str, typer.Argument(help="the key's public id")],
) -> None:
    """Revoke an API key for good."""
    from crowdquant.tournament.accounts import get_account, revoke_api_key

    with operator() as ops:
        key = _in_transaction(
            ops,
            lambda session: revoke_api_key(
                session, ops.clock, get_account(session, username), public_id
            ),
        )
    console.print(f"revoked API key {key.public_id} at {_when(key.revoked_at)}")


# --- rounds --------------------------------------------------------------------------------------


def round_line(tournament: int, round_: Round) -> str:
    return (
        f"round [bold]{round_.number}[/] of tournament {tournament} is {round_.status}: "
        f"open {_when(round_.open_time)} to {_when(round_.close_time)}, "
        f"live era {round_.live_era}, resolves {_when(round_.resolve_time)}"
    )


def open_next_round(
    ops: Infrastructure,
    session: Session,
    tournament: Tournament,
    *,
    now: bool = False,
    replay_weeks: int | None = None,
) -> Round:
    """Open the tournament's next round: the calendar's window open now, or with `now` a
    window starting now (as long as today's calendar round), whatever the calendar says."""
    from crowdquant.tournament.rounds import open_round, open_round_now
    from crowdquant.tournament.runtime import tournament_runtime

    with console.status("loading the market"):
        runtime = tournament_runtime(
            ops.settings, tournament, ops.storage, replay_weeks=replay_weeks or 0
        )
        publisher = runtime.publisher
    assert publisher is not None  # a tournament's runtime always publishes its live eras
    with console.status("publishing the live era"):
        if now:
            return open_round_now(session, ops.clock, tournament, publisher)
        return open_round(session, ops.clock, tournament, publisher)


@round_app.command("open")
def round_open(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
    now: Annotated[
        bool,
        typer.Option("--now", help="open a window starting now instead of the calendar's"),
    ] = False,
) -> None:
    """Open the tournament's next round and publish its live era."""
    from crowdquant.tournament.tournaments import get_tournament

    with operator() as ops:
        opened = _in_transaction(
            ops,
            lambda session: open_next_round(
                ops, session, get_tournament(session, tournament), now=now
            ),
        )
    console.print(round_line(tournament, opened))


@round_app.command("close")
def round_close(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
    number: Annotated[int, typer.Option(help="the round's number")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Close a round now: no more submissions or stake changes."""
    from crowdquant.tournament.rounds import get_round
    from crowdquant.tournament.tournaments import get_tournament

    if not yes and not typer.confirm(
        f"close round {number} of tournament {tournament} now? It takes no more submissions"
    ):
        raise _fail("not closed")
    with operator() as ops:

        def close(session: Session) -> tuple[Round, bool]:
            round_ = get_round(session, get_tournament(session, tournament), number)
            return round_, _lifecycle(ops).close(session, round_)

        round_, changed = _in_transaction(ops, close)
    if changed:
        console.print(f"closed round {round_.number} of tournament {tournament}")
    else:
        console.print(f"round {round_.number} of tournament {tournament} was already closed")


@round_app.command("resolve")
def round_resolve(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
    number: Annotated[int, typer.Option(help="the round's number")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
) -> None:
    """Resolve a scoring round now: pay and burn its stakes on the scores stored so far."""
    from crowdquant.tournament.resolution import round_result
    from crowdquant.tournament.rounds import get_round
    from crowdquant.tournament.tournaments import get_tournament

    if not yes and not typer.confirm(
        f"resolve round {number} of tournament {tournament} now? Its payouts are final"
    ):
        raise _fail("not resolved")
    with operator() as ops:

        def resolve(session: Session) -> tuple[bool, list[str]]:
            round_ = get_round(session, get_tournament(session, tournament), number)
            changed = _lifecycle(ops).resolve(session, round_)
            result = round_result(session, round_)
            return changed, [] if result is None else results_lines(session, round_, result)

        changed, lines = _in_transaction(ops, resolve)
    if not changed:
        console.print(f"round {number} of tournament {tournament} was already resolved")
    for line in lines:
        console.print(line, markup=False)


@round_app.command("results")
def round_results(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
    number: Annotated[int, typer.Option("--round", help="the round's number")],
) -> None:
    """A resolved round's results: the summary and every payout."""
    from crowdquant.tournament.resolution import round_result
    from crowdquant.tournament.rounds import get_round
    from crowdquant.tournament.tournaments import get_tournament

    with operator() as ops:

        def read(session: Session) -> list[str] | None:
            round_ = get_round(session, get_tournament(session, tournament), number)
            result = round_result(session, round_)
            return None if result is None else results_lines(session, round_, result)

        lines = _in_transaction(ops, read)
    if lines is None:
        raise _fail(f"round {number} of tournament {tournament} has not resolved yet")
    for line in lines:
        console.print(line, markup=False)


def results_lines(session: Session, round_: Round, result: RoundResult) -> list[str]:
    """The seeds' "Results" block, then one line per payout, best first."""
    from crowdquant.money import Currency, console_amount
    from crowdquant.tournament.resolution import round_payouts

    names = {model.id: model.name for model in round_.tournament.models}
    lines = [
        f"Tournament {round_.tournament.number}, round {round_.number} results:"
        f" resolved {_when(result.resolved_at)}",
        f"participants {result.participants}, controlling capital {result.stakers}"
        f" ({console_amount(result.at_risk, Currency.NMR)} at risk)",
        f"USD paid out {console_amount(result.usd_paid, Currency.USD)},"
        f" NMR paid out {console_amount(result.nmr_paid, Currency.NMR)},"
        f" NMR burned {console_amount(result.nmr_burned, Currency.NMR)}",
    ]
    if result.payout_factor is not None:
        lines.append(f"payout factor {result.payout_factor}")
    if result.scale != "full":
        lines.append(f"rewards scaled down pro rata to what was available ({result.scale})")
    payouts = sorted(round_payouts(session, round_), key=lambda row: (-row.nmr, -row.usd))
    for row in payouts:
        lines.append(
            f"  {names.get(row.model_id, row.model_id)}:"
            f" at risk {console_amount(row.at_risk, Currency.NMR)},"
            f" NMR {console_amount(row.nmr, Currency.NMR)},"
            f" USD {console_amount(row.usd, Currency.USD)}"
        )
    return lines


@round_app.command("list")
def round_list(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
) -> None:
    """The tournament's rounds, oldest first."""
    from rich.table import Table

    from crowdquant.tournament.rounds import list_rounds
    from crowdquant.tournament.tournaments import get_tournament

    with operator() as ops:
        rounds = _in_transaction(
            ops, lambda session: list_rounds(session, get_tournament(session, tournament))
        )
    if not rounds:
        console.print(f"tournament {tournament} has no rounds yet")
        return
    table = Table(title=f"rounds of tournament {tournament}")
    for column in ("round", "status", "opens", "closes", "resolves", "live era"):
        table.add_column(column)
    for round_ in rounds:
        table.add_row(
            str(round_.number),
            str(round_.status),
            _when(round_.open_time),
            _when(round_.close_time),
            _when(round_.resolve_time),
            round_.live_era,
        )
    console.print(table)


@round_app.command("replay")
def round_replay(
    tournament: Annotated[int, typer.Option(help="the tournament's number")],
    number: Annotated[int, typer.Option("--round", help="the round's number")],
) -> None:
    """Recompute a round's stored scores from its stored inputs, check its recorded score
    configs against its recorded payout rule, and recompute a resolved round's payouts from
    its stored stakes and scores; list any difference."""
    from crowdquant.tournament.resolution import (
        replay_payouts,
        replay_score_configs,
        round_payouts,
        round_result,
    )
    from crowdquant.tournament.rounds import get_round, round_score_configs
    from crowdquant.tournament.scoring import replay_round, round_scores
    from crowdquant.tournament.tournaments import get_tournament

    with operator() as ops:

        def replay(
            session: Session,
        ) -> tuple[int, list[str], list[str], list[str], int | None, list[str]]:
            round_ = get_round(session, get_tournament(session, tournament), number)
            stored = len(round_scores(session, round_))
            differences = [str(d) for d in replay_round(session, ops.clock, ops.storage, round_)]
            paying = [
                f"{config.name} {config.version} × {config.default_multiplier}"
                for config in round_score_configs(round_)
                if config.is_payout and config.default_multiplier is not None
            ]
            configs = replay_score_configs(round_)
            if round_result(session, round_) is None:
                return stored, differences, paying, configs, None, []
            paid = len(round_payouts(session, round_))
            return stored, differences, paying, configs, paid, replay_payouts(session, round_)

        stored, differences, paying, configs, paid, payout_differences = _in_transaction(
            ops, replay
        )
    for line in differences + configs + payout_differences:
        console.print(line, markup=False)
    if differences:
        console.print(f"[red]{len(differences)} of {stored} scores differ[/]")
    else:
        console.print(
            f"round {number} of tournament {tournament}: all {stored} stored scores reproduced"
            " exactly"
        )
    if configs:
        console.print(f"[red]{len(configs)} score config differences[/]")
    elif paying:
        console.print(f"score configs agree with the round's rule: {', '.join(paying)}")
    if paid is not None and payout_differences:
        console.print(f"[red]{len(payout_differences)} of {paid} payouts differ[/]")
    elif paid is not None:
        console.print(f"all {paid} payouts reproduced exactly")
    if differences or configs or payout_differences:
        raise typer.Exit(1)


# --- serve ---------------------------------------------------------------------------------------


def serve(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8000,
    tick_seconds: Annotated[float, typer.Option(help="seconds between scheduler ticks")] = 60.0,
    workers: Annotated[
        int, typer.Option(min=1, help="web worker processes on the one port (one ticks)")
    ] = 1,
    clock_start: Annotated[
        str | None,
        typer.Option(help="run on a stepped clock from this UTC time (ISO 8601), for rehearsals"),
    ] = None,
    clock_step_hours: Annotated[
        float, typer.Option(help="hours the stepped clock moves at each tick")
    ] = 1.0,
    clock_until: Annotated[
        str | None, typer.Option(help="stop after the stepped clock's last tick at or before this")
    ] = None,
) -> None:
    """Serve numerapi's API and run the round scheduler until Ctrl-C.

    Other `serve` processes (here or on other machines) may share the database: all answer
    requests, one at a time runs the scheduler."""
    from crowdquant.server.bootstrap import printable_url
    from crowdquant.server.serve import (
        Server,
        WorkerFailed,
        build_server,
        prepare_workers,
        url_line,
    )
    from crowdquant.server.stepped import stepped_ticks
    from crowdquant.settings import Settings

    stepped = _stepped_clock(clock_start, clock_step_hours, clock_until)
    if stepped is not None and workers > 1:
        raise _fail("a stepped clock runs in one process: leave out --workers")
    settings = Settings()
    try:
        if workers > 1:
            server: Server | Workers = prepare_workers(
                settings, count=workers, host=host, port=port, tick_seconds=tick_seconds
            )
        else:
            server = build_server(
                settings,
                host=host,
                port=port,
                tick_seconds=tick_seconds,
                warn=console.print,
                clock=None if stepped is None else stepped[0],
                shared=True,
            )
    except Exception as exc:
        raise _fail(f"cannot start: {str(exc) or repr(exc)}") from exc
    console.print(f"serving {printable_url(settings.database)}; participants set:")
    public = settings.public_url
    console.print(url_line(server.url if public is None else str(public)), markup=False)
    try:
        if stepped is None or not isinstance(server, Server):
            server.run()
        else:
            clock, step, until = stepped
            server.run(stepped_ticks(server, clock, step, until=until, say=console.print))
    except WorkerFailed as exc:
        raise _fail(str(exc)) from exc
    console.print("stopped")


def _stepped_clock(
    start: str | None, step_hours: float, until: str | None
) -> tuple[ManualClock, timedelta, datetime | None] | None:
    """The stepped clock `serve` was asked for (None: the system's), its step and end."""
    from crowdquant.clock import ManualClock
    from crowdquant.server.stepped import utc_time

    if start is None:
        if until is not None:
            raise _fail("--clock-until needs --clock-start")
        return None
    if not 0 < step_hours <= 24 * 366:
        raise _fail(f"--clock-step-hours must be above 0 and at most a year, not {step_hours}")
    try:
        begins = utc_time(start)
        ends = None if until is None else utc_time(until)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if ends is not None and ends < begins:
        raise _fail("--clock-until is before --clock-start")
    return ManualClock(begins), timedelta(hours=step_hours), ends
