"""`crowdquant simulate`: a tournament of bots run headless for hundreds of rounds, and its
report.

Everything is real but the clock: a synthetic market built into a dataset version, the
tournament and its scheduler, the ledger, the API served on a loopback port, and the bots
of `crowdquant.simulate.bots` playing through it with numerapi. The accelerated clock jumps
from one moment that matters to the next (a round opening or closing, the daily scoring
hour), so a round's month passes as fast as the work allows. Once the asked number of rounds
has opened, no more open; when they have all resolved, the books are read into a
`SimulationRecord` and the report (tables, plots, mechanism checks) is written.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crowdquant.cli.data import BUILD_STEPS, _fail, console, progress_reporter
from crowdquant.cli.operator import _in_transaction, operator
from crowdquant.db.enums import ApiScope, Cadence, Rules
from crowdquant.money import NMR_UNIT
from crowdquant.payouts.rules import ClassicRule, RoundStakeRule

if TYPE_CHECKING:
    import httpx
    from argon2 import PasswordHasher
    from sqlalchemy.orm import Session

    from crowdquant.clock import Clock
    from crowdquant.data.keys import OperatorKeys
    from crowdquant.db.models import Tournament
    from crowdquant.server.bootstrap import Infrastructure
    from crowdquant.server.serve import Server
    from crowdquant.settings import Settings
    from crowdquant.simulate.bots import Bot, Cohort, Participant
    from crowdquant.simulate.driver import Players
    from crowdquant.simulate.record import BotStakes, SimulationRecord
    from crowdquant.tournament.calendar import Schedule
    from crowdquant.tournament.scheduler import Scheduler

TOURNAMENT = 8
BOT_SCOPES = (ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE)
BOT_GRANT = 1_000 * NMR_UNIT
DEFAULT_POPULATION = "realistic"  # `crowdquant.simulate.populations.DEFAULT_POPULATION`
VERSION = "simulation"
HISTORY_WEEKS = 160
"""Weeks of synthetic market in the dataset the bots train on (warm-up included)."""
RESOLUTION_DAYS = 90
"""Simulated days after the last round opens by which every round must have resolved."""
SWEEP_EVERY = timedelta(weeks=1)
"""How often the simulated scheduler sweeps upload files (a server: hourly)."""
SIMULATED_RULES = {ClassicRule.version: Rules.CLASSIC, RoundStakeRule.version: Rules.ROUND_STAKE}
"""The rule versions the bots play, by the `version` a rule setting may name."""


# --- bots' accounts, shared with the demo ------------------------------------------------------


def enrol_bots(
    ops: Infrastructure,
    session: Session,
    bots: Sequence[Bot],
    keys_file: Path,
    *,
    hasher: PasswordHasher | None = None,
) -> dict[str, tuple[str, str]]:
    """Each bot's account (signed up once), API key (kept in `keys_file`, readable by its
    owner only) and NMR (granted from the treasury once): username → (public id, secret)."""
    from crowdquant.tournament.accounts import (
        UnknownAccount,
        create_api_key,
        get_account,
        sign_up,
    )
    from crowdquant.tournament.staking import grant_nmr

    try:
        kept: dict[str, list[str]] = json.loads(keys_file.read_text())
    except (OSError, ValueError):
        kept = {}
    ops.ledger.genesis(session)
    keys: dict[str, tuple[str, str]] = {}
    for bot in bots:
        try:
            account = get_account(session, bot.username)
        except UnknownAccount:
            email = f"{bot.username}@bots.invalid"
            account = sign_up(
                session, ops.clock, bot.username, email, os.urandom(18).hex(), hasher=hasher
            )
        stored = kept.get(bot.username)
        if stored is None or not key_works(ops, session, account.id, stored):
            new = create_api_key(session, ops.clock, account, "bot", list(BOT_SCOPES))
            stored = [new.public_id, new.secret]
        keys[bot.username] = (stored[0], stored[1])
        grant_nmr(session, ops.ledger, account, BOT_GRANT, f"bot:{account.id}")
    write_private(keys_file, {name: list(key) for name, key in keys.items()})
    return keys


def key_works(
    ops: Infrastructure,
    session: Session,
    account_id: uuid.UUID,
    key: Sequence[str],
    scopes: Sequence[ApiScope] = BOT_SCOPES,
) -> bool:
    """Whether a kept (public id, secret) still opens `account_id` with every scope."""
    from crowdquant.tournament.accounts import AccountError, authenticate_api_key

    try:
        return all(
            authenticate_api_key(session, ops.clock, key[0], key[1], scope).id == account_id
            for scope in scopes
        )
    except AccountError:
        return False


def write_private(path: Path, content: Any) -> None:
    """`content` as JSON readable by its owner only, replacing the file at once."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file, indent=2)
    os.replace(temporary, path)


def seeded_keys(keyfile: Path, seed: int) -> OperatorKeys:
    """The operator's keys of a simulation, drawn from its seed (so the obfuscation and every
    round's ids repeat with it), kept in `keyfile`; a home kept from a run with another
    seed is refused."""
    from crowdquant.data.keys import KEY_BYTES, OperatorKeys

    digest = hashlib.shake_256(f"crowdquant simulation seed {seed}".encode()).digest(KEY_BYTES)
    keys = OperatorKeys(digest)
    if not keyfile.exists():
        keys.save(keyfile)
    elif OperatorKeys.load(keyfile) != keys:
        raise ValueError(f"{keyfile.parent} was simulated with another seed")
    return keys


# --- the simulation ----------------------------------------------------------------------------


def run_simulation(
    home: Path,
    out: Path,
    *,
    rounds: int,
    population: Sequence[Cohort],
    cadence: Cadence,
    payout_rule: dict[str, Any],
    stocks: int,
    seed: int,
    stake: Decimal,
    database_url: str | None = None,
    over_http: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
    meta_model_weights: str | None = None,
    two_cores: bool = True,
    fixed_stakes: bool = False,
) -> tuple[SimulationRecord, Path]:
    """Run the simulation in `home` (its database: a SQLite file there unless
    `database_url`), write the report into `out`; the record and the report's path. The bots
    reach the app in this process (its routes, called as an ASGI server calls them), or, with
    `over_http`, served on a loopback port. `progress` is told (what runs now, steps done,
    steps in all): the dataset's build steps (`BUILD_STEPS`), then the rounds resolved out of
    `rounds`. `meta_model_weights` sets the tournament's meta-model weighting (default: the
    tournaments' default). With `two_cores`, the market's half of the scheduler's ticks
    (scoring, resolution, the fund) and half of the bots run in processes of their own while
    the other bots play here (`simulate.spawned`); without, each tick runs whole here, then
    every bot plays here. With `fixed_stakes` the bots keep their stakes fixed
    (`simulate.bots.Bot.fixed_stake`) rather than let them compound."""
    from argon2 import PasswordHasher
    from threadpoolctl import threadpool_limits

    from crowdquant.data.build import build_version
    from crowdquant.data.config import DatasetConfig
    from crowdquant.data.sources import SyntheticSource
    from crowdquant.data.sources.synthetic import SyntheticConfig
    from crowdquant.server.serve import build_server
    from crowdquant.settings import Settings
    from crowdquant.simulate.bots import RoundStaking
    from crowdquant.simulate.bots import population as bots_of
    from crowdquant.simulate.clock import AcceleratedClock
    from crowdquant.simulate.driver import Driver, Step, failures
    from crowdquant.simulate.report import write_report
    from crowdquant.simulate.spawned import Spawned
    from crowdquant.tournament.calendar import schedule_for
    from crowdquant.tournament.datasets import publish_dataset_version
    from crowdquant.tournament.rules import ruleset_for
    from crowdquant.tournament.scheduler import RoundOpened, RoundResolved
    from crowdquant.tournament.scoring import InputsCache
    from crowdquant.tournament.tournaments import create_tournament, get_tournament

    started = time.monotonic()
    from crowdquant.simulate.in_process import APP_URL

    settings = Settings(
        mode="local",
        home=home,
        database_url=database_url,
        public_url=None if over_http else APP_URL,  # where the app's signed URLs point
        storage_fsync=False,  # a simulated home: nothing to lose in a power cut
    )
    settings.home.mkdir(parents=True, exist_ok=True)
    market = SyntheticConfig(n_stocks=stocks, n_weeks=HISTORY_WEEKS, seed=seed)
    try:
        operator_keys = seeded_keys(settings.keyfile, seed)
    except ValueError as exc:
        raise _fail(str(exc)) from exc
    tell = progress or (lambda what, done, total: None)

    def building(step: str) -> None:
        tell(f"dataset: {step}", BUILD_STEPS.index(step), len(BUILD_STEPS))

    version, _ = build_version(
        SyntheticSource(market=market),
        DatasetConfig(),
        operator_keys,
        settings.datasets_dir,
        settings.operator_dir,
        version=VERSION,
        report=building,
    )
    tell("dataset built", len(BUILD_STEPS), len(BUILD_STEPS))
    start = datetime.combine(market.start, datetime.min.time(), UTC) + timedelta(
        weeks=HISTORY_WEEKS
    )
    clock = AcceleratedClock(start)
    rules = rules_of(payout_rule)
    grant = Decimal(BOT_GRANT) / NMR_UNIT
    round_staking = (
        RoundStaking(rounds_at_risk(schedule_for(cadence, {}), start), grant)
        if ruleset_for(rules).round_stakes
        else None
    )
    bots = bots_of(population, stake, seed, round_staking, fixed_stakes)
    cheap = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # throwaway accounts
    with operator(settings, clock) as ops:

        def prepare(session: Session) -> dict[str, tuple[str, str]]:
            create_tournament(
                session,
                clock,
                TOURNAMENT,
                VERSION,
                rules,
                cadence,
                version,
                {
                    **({"payout_rule": payout_rule} if payout_rule else {}),
                    **(
                        {"meta_model": {"weights": meta_model_weights}}
                        if meta_model_weights
                        else {}
                    ),
                }
                or None,
            )
            publish_dataset_version(session, clock, ops.storage, version)
            return enrol_bots(ops, session, bots, home / "bots.json", hasher=cheap)

        keys = _in_transaction(ops, prepare)
    # the report tells the story; the scheduler's failures are printed as they come
    logging.getLogger("crowdquant").setLevel(logging.WARNING)
    logging.getLogger("crowdquant.tournament.scheduler").setLevel(logging.CRITICAL)
    server = build_server(
        settings,
        port=0,
        clock=clock,
        warn=console.print,
        log_level="warning",
        validation_pool=over_http,  # in process, the bots' uploads are read where they arrive
    )
    server.scheduler.inputs_cache = InputsCache()  # a small market: each round's inputs kept
    # files are thrown away with the home: their weekly sweep keeps the disk in bounds
    server.scheduler.retention = replace(server.scheduler.retention, sweep_every=SWEEP_EVERY)
    archetypes = {bot.username: bot.archetype.name for bot in bots}
    snapshots: list[tuple[int, str, str, float]] = []
    here, there = (bots[::2], bots[1::2]) if two_cores else (bots, [])
    with ExitStack() as stack:
        # one thread per numerical library, as in the spawned processes: on two cores, the
        # run's processes keep each core busy, and spare threads only spin against them
        stack.enter_context(threadpool_limits(1))
        url, transport = stack.enter_context(_reach(server, over_http))
        market_half = more_players = None
        if two_cores:
            market_half = stack.enter_context(
                Spawned(partial(market_scheduler, settings), start, "market")
            )
            others = [(bot, keys[bot.username]) for bot in there]
            more_players = stack.enter_context(
                Spawned(
                    partial(players_apart, settings, url if over_http else None, others),
                    start,
                    "players",
                )
            )
        players = _clients([(bot, keys[bot.username]) for bot in here], url, transport)
        with operator(settings, clock) as ops:
            tournament_schedule = _in_transaction(
                ops, lambda s: schedule_for(cadence, get_tournament(s, TOURNAMENT).settings)
            )
            driver = Driver(
                clock,
                server.scheduler,
                [tournament_schedule],
                players,
                timedelta(days=1),
                polls=[server.diagnostics.poll],
                market=market_half,
                more_players=more_players,
            )
            resolved = Resolved(rounds)
            tell("rounds resolved", 0, rounds)
            days_per_round = 7 if cadence is Cadence.WEEKLY else 2
            deadline = start + timedelta(days=rounds * days_per_round + RESOLUTION_DAYS)

            def done(step: Step) -> bool:
                if step.at > deadline:
                    raise _fail(
                        f"by {step.at:%Y-%m-%d} only {resolved.count} of {rounds} rounds had"
                        " resolved: see the failures above"
                    )
                for event in step.events:
                    if isinstance(event, RoundOpened) and event.round >= rounds:
                        runtime = server.scheduler.runtime(TOURNAMENT)
                        no_more_rounds = replace(runtime, publisher=None)
                        server.scheduler.runtimes[TOURNAMENT] = no_more_rounds
                    if isinstance(event, RoundResolved):
                        snapshots.extend(
                            (event.round, *holding)
                            for holding in _in_transaction(
                                ops, lambda s: _holdings(ops, s, archetypes)
                            )
                        )
                        resolved.add(event.round, step.at)
                        tell("rounds resolved", resolved.count, rounds)
                for line in failures(step):
                    console.print(f"[yellow]{line.splitlines()[0]}[/]", highlight=False)
                return resolved.count >= rounds

            driver.run(done)
            record = _in_transaction(
                ops,
                lambda s: _record(
                    ops,
                    s,
                    archetypes,
                    snapshots,
                    rounds,
                    cadence,
                    time.monotonic() - started,
                    "fixed" if fixed_stakes else "compound",
                ),
            )
        for _, client in players:
            client.close()
    return record, write_report(record, out)


@contextmanager
def market_scheduler(settings: Settings, clock: Clock) -> Iterator[Scheduler]:
    """The market process's scheduler: on the simulation's database and files, keeping every
    scoring round's inputs (the simulated market is small)."""
    from crowdquant.server.serve import scheduler_apart
    from crowdquant.tournament.scoring import InputsCache

    with scheduler_apart(settings, clock) as scheduler:
        scheduler.inputs_cache = InputsCache()
        yield scheduler


@contextmanager
def players_apart(
    settings: Settings, url: str | None, bots: list[tuple[Bot, tuple[str, str]]], clock: Clock
) -> Iterator[Players]:
    """The players of another process: `bots` (each with its API key), reaching the app of
    that process, on the simulation's database (`url` None), or the served app at `url`."""
    from crowdquant.server.serve import build_server
    from crowdquant.simulate.driver import Players

    with ExitStack() as stack:
        transport = None
        if url is None:
            server = build_server(
                settings,
                port=0,
                clock=clock,
                warn=lambda _message: None,
                log_level="warning",
                validation_pool=False,
            )
            url, transport = stack.enter_context(_reach(server, over_http=False))
        players = Players(_clients(bots, url, transport))
        stack.callback(players.close)
        yield players


def _clients(
    bots: list[tuple[Bot, tuple[str, str]]], url: str, transport: httpx.BaseTransport | None
) -> list[tuple[Bot, Participant]]:
    """Each bot with its client on `url` (through `transport`), by its API key; the bots of
    one process share the decoding of their downloads."""
    from crowdquant.simulate.bots import ParsedFiles, Participant

    parsed = ParsedFiles()  # every bot downloads the round's file; it is decoded once
    return [(bot, Participant(url, *key, TOURNAMENT, transport, parsed)) for bot, key in bots]


@contextmanager
def _reach(server: Server, over_http: bool) -> Iterator[tuple[str, httpx.BaseTransport | None]]:
    """Where the bots reach the app for the block: its URL, and the transport to it (None:
    over the network, served on a loopback port)."""
    from crowdquant.simulate.in_process import APP_URL, AppTransport, requests_through

    if over_http:
        with server.serving(diagnostics_thread=False) as url:
            yield url, None
        return
    with server.in_process(diagnostics_thread=False) as app:
        transport = AppTransport(app)
        try:
            with requests_through(transport):
                yield APP_URL, transport
        finally:
            transport.close()


def _holdings(
    ops: Infrastructure, session: Session, archetypes: dict[str, str]
) -> list[tuple[str, str, float]]:
    from crowdquant.simulate.collect import holdings
    from crowdquant.tournament.tournaments import get_tournament

    return holdings(session, ops.ledger, get_tournament(session, TOURNAMENT), archetypes)


def _record(
    ops: Infrastructure,
    session: Session,
    archetypes: dict[str, str],
    snapshots: list[tuple[int, str, str, float]],
    rounds: int,
    cadence: Cadence,
    seconds: float,
    bot_stakes: BotStakes,
) -> SimulationRecord:
    from crowdquant.simulate.collect import (
        fund_table,
        holdings_table,
        models_table,
        results_table,
        rounds_table,
    )
    from crowdquant.simulate.record import SimulationRecord
    from crowdquant.tournament.rounds import tournament_payout_rule
    from crowdquant.tournament.settings_model import settings_of
    from crowdquant.tournament.tournaments import get_tournament

    tournament: Tournament = get_tournament(session, TOURNAMENT)
    models = models_table(session, tournament, archetypes)
    return SimulationRecord(
        rule=tournament_payout_rule(tournament).version,
        cadence=cadence.value,
        rounds_run=rounds,
        models=models,
        results=results_table(session, tournament, models),
        rounds=rounds_table(session, ops.storage, tournament),
        holdings=holdings_table(snapshots),
        fund=fund_table(session, tournament),
        seconds=seconds,
        weighting=settings_of(tournament).meta_model.weights,
        bot_stakes=bot_stakes,
    )


class Resolved:
    """Rounds resolved so far: the first, every tenth and the last are said."""

    def __init__(self, total: int) -> None:
        self.total, self.count = total, 0

    def add(self, number: int, at: datetime) -> None:
        self.count += 1
        if self.count == 1 or self.count % 10 == 0 or self.count == self.total:
            console.print(f"{at:%Y-%m-%d} round {number} resolved ({self.count}/{self.total})")


def simulate(
    rounds: Annotated[int, typer.Option(min=1, help="rounds to open and resolve")] = 200,
    population_: Annotated[
        str,
        typer.Option(
            "--population",
            help="realistic, spam, sybils, copier, one-each; or bots per archetype: name=count,...",
        ),
    ] = DEFAULT_POPULATION,
    payout_rule: Annotated[
        str,
        typer.Option(
            help="the tournament's payout_rule setting, JSON, e.g. '{\"mmc_multiplier\": 3}';"
            ' with "version": "round-stake-v1" stakes are placed per round'
        ),
    ] = "{}",
    cadence: Annotated[Cadence, typer.Option(help="how often rounds open")] = Cadence.DAILY,
    stocks: Annotated[
        int,
        typer.Option(
            min=10, help="stocks in the synthetic market; with far fewer the models find no skill"
        ),
    ] = 1000,
    seed: Annotated[int, typer.Option(min=0, help="the market's and the bots' seed")] = 1,
    stake: Annotated[float, typer.Option(min=0.01, help="NMR each bot stakes per model")] = 100.0,
    out: Annotated[Path, typer.Option(help="where the report is written")] = Path("simulation"),
    over_http: Annotated[
        bool,
        typer.Option(
            "--over-http", help="serve the app on a loopback port (default: reach it in process)"
        ),
    ] = False,
    meta_model_weights: Annotated[
        str | None,
        typer.Option(
            help="the meta model's weighting: stake, stake_x_reputation (default: the"
            " tournaments' default)"
        ),
    ] = None,
    fixed_stakes: Annotated[
        bool,
        typer.Option(
            "--fixed-stakes",
            help="the bots take their payouts and keep their stakes where they started"
            " (default: payouts stay staked and compound)",
        ),
    ] = False,
    keep: Annotated[
        Path | None,
        typer.Option(help="keep the simulated tournament's home here (default: discard)"),
    ] = None,
    compare: Annotated[
        bool,
        typer.Option(
            "--compare",
            help="run once per RULE_FILES (each a payout_rule setting, JSON) with the same seed"
            " and write their reports side by side",
        ),
    ] = False,
    rule_files: Annotated[
        list[Path] | None, typer.Argument(help="with --compare: the rule settings, JSON files")
    ] = None,
) -> None:
    """Run a tournament of bots headless for many rounds and write a report of what the rules
    did: each archetype's NMR, payouts and burns, the meta model, and the mechanism checks."""
    from crowdquant.simulate.populations import parse_population
    from crowdquant.simulate.report import summary_lines, write_comparison

    try:
        cohorts = parse_population(population_)
        _meta_model_weights(meta_model_weights)
        if compare or rule_files:
            settings = _rule_files(rule_files or [], compare, payout_rule)
        else:
            settings = {"": _payout_rule(json.loads(payout_rule), "--payout-rule")}
    except ValueError as exc:
        raise _fail(f"{exc}") from exc
    runs = []
    with tempfile.TemporaryDirectory(prefix="crowdquant-simulation-") as scratch:
        for name, rule in settings.items():
            with progress_reporter(20, f"simulation {name}".strip()) as progress:
                record, report = run_simulation(
                    (keep or Path(scratch)) / name,
                    out / name,
                    rounds=rounds,
                    population=cohorts,
                    cadence=cadence,
                    payout_rule=rule,
                    stocks=stocks,
                    seed=seed,
                    stake=Decimal(str(stake)),
                    over_http=over_http,
                    progress=progress,
                    meta_model_weights=meta_model_weights,
                    fixed_stakes=fixed_stakes,
                )
            runs.append((name, record))
            for line in summary_lines(record):
                console.print(line, markup=False, highlight=False, soft_wrap=True)
            console.print(f"report: {report}")
    if compare:
        console.print(f"side by side: {write_comparison(runs, out)}")


def rules_of(payout_rule: dict[str, Any]) -> Rules:
    """The rules a simulated tournament plays by: those of the rule version its payout_rule
    setting names (the classic rule's if none)."""
    version = payout_rule.get("version", ClassicRule.version)
    if version not in SIMULATED_RULES:
        raise ValueError(f"version: the bots play {' and '.join(SIMULATED_RULES)}, not {version!r}")
    return SIMULATED_RULES[version]


def rounds_at_risk(schedule: Schedule, start: datetime) -> int:
    """How many rounds of `schedule` are open or unresolved at once: those that open between
    the first round after `start` opening and resolving."""
    from crowdquant.tournament.calendar import next_round

    first = next_round(schedule, start)
    count, moment = 1, first.open_time
    while (following := next_round(schedule, moment + timedelta(seconds=1))).open_time < (
        first.resolve_time
    ):
        count, moment = count + 1, following.open_time
    return count


def _payout_rule(rule: object, where: str) -> dict[str, Any]:
    """`rule` if it is a payout_rule setting of a rule version the bots play (`version`,
    the classic rule's if none, and the fields it overrides)."""
    from crowdquant.payouts import PayoutRuleError, rule_with

    if not isinstance(rule, dict):
        raise ValueError(f'{where} is a JSON object, e.g. \'{{"clip": "0.1"}}\'')
    try:
        rule_with(rules_of(rule).value, rule)
    except (PayoutRuleError, ValueError) as exc:
        raise ValueError(f"{where}: {exc}") from exc
    return rule


def _rule_files(files: Sequence[Path], compare: bool, payout_rule: str) -> dict[str, Any]:
    """The rule settings to compare, by their file's name (without .json)."""
    if not compare:
        raise ValueError("rule files are compared: write --compare A.json B.json")
    if payout_rule != "{}":
        raise ValueError("--compare takes the rule settings from its files, not --payout-rule")
    if len(files) < 2:
        raise ValueError("--compare needs at least two rule files")
    settings: dict[str, Any] = {}
    for path in files:
        if path.stem in settings:
            raise ValueError(f"two rule files are named {path.stem}")
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValueError(f"{path}: {exc.strerror or exc}") from exc
        try:
            rule = json.loads(text)
        except ValueError as exc:
            raise ValueError(f"{path}: not JSON: {exc}") from exc
        settings[path.stem] = _payout_rule(rule, str(path))
    return settings


def _meta_model_weights(weights: str | None) -> None:
    """Refuse a weighting the tournaments' settings do not know, naming the known ones."""
    from crowdquant.scoring.metamodel import META_MODEL_WEIGHTS, STAKE_X_TEST_WEIGHTS

    known = [name for name in META_MODEL_WEIGHTS if name != STAKE_X_TEST_WEIGHTS]
    if weights is not None and weights not in known:
        raise ValueError(f"--meta-model-weights is one of {', '.join(known)}, not {weights!r}")
