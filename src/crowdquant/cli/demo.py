"""`crowdquant demo`: a living tournament on this machine, played by bots, open to numerapi.

Each step first looks for what an earlier run made, so running the demo again reuses the
dataset, the tournament, the participants and the simulated time reached:

1. build the bundled real-market dataset once (version `bundled-demo`);
2. migrate the database (a SQLite file and local files in CROWDQUANT_HOME by default);
3. create tournament 8 (numerapi's default) with daily rounds and the classic rules; its
   recorded market (1990-2022) is replayed some years behind the calendar, so rounds are
   scored on real prices;
4. start an accelerated clock where the last run stopped (or now), a day passing every
   `--day-seconds`, and open a round at once unless one is open (a round closed by hand
   makes way at once);
5. record the ledger's genesis; create the participant `demo` with the model `demo_model`, a
   read+upload+stake API key, whose secret is kept in CROWDQUANT_HOME/demo-participant.json
   (a local demo only), and 1,000 NMR granted from the treasury once; and the bots of
   `crowdquant.simulate.bots`, one of each archetype, with 1,000 NMR each;
6. print what a participant needs, then serve the API and the site while the driver moves
   the clock, ticks the scheduler and lets the bots play, telling what happens, until
   Ctrl-C (or `--days` simulated days).
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from crowdquant.cli.data import _fail, console
from crowdquant.cli.operator import round_line
from crowdquant.db.enums import ApiScope, Cadence, Rules
from crowdquant.money import NMR_UNIT, Currency, console_amount

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from crowdquant.clock import Clock
    from crowdquant.data.release import DatasetVersion
    from crowdquant.db.models import Round, Tournament
    from crowdquant.server.bootstrap import Infrastructure
    from crowdquant.server.serve import Server
    from crowdquant.settings import Settings
    from crowdquant.simulate.bots import Bot
    from crowdquant.simulate.clock import AcceleratedClock
    from crowdquant.simulate.driver import Step

DATASET_VERSION = "bundled-demo"
TOURNAMENT = 8
TOURNAMENT_NAME = "classic"
USERNAME = "demo"
EMAIL = "demo@example.org"
MODEL_NAME = "demo_model"
KEY_NAME = "demo"
CREDENTIALS_FILE = "demo-participant.json"
KEY_SCOPES = (ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE)
DEMO_GRANT = 1_000 * NMR_UNIT
BOT_STAKE = Decimal(50)
BOTS_FILE = "demo-bots.json"
CLOCK_FILE = "demo-clock.json"
REPLAY_YEARS = 3
AFTER_CLOSED_ROUND = timedelta(seconds=1)
"""How long after a closed round's opening a run that finds it closed starts its clock."""


@dataclass(frozen=True)
class DemoParticipant:
    """The demo participant's API key (secret included) and model."""

    username: str
    public_id: str
    secret: str
    model_name: str
    model_id: str
    kept_in: Path


@dataclass(frozen=True)
class Demo:
    """What the demo prepared: its tournament, open round, participant and bots."""

    tournament: Tournament
    round: Round
    participant: DemoParticipant
    bots: list[Bot]
    keys: dict[str, tuple[str, str]]  # bot → its API key
    replay_weeks: int


# --- the steps, each reusing what an earlier run made ----------------------------------------


def ensure_dataset(settings: Settings) -> DatasetVersion:
    """Build the bundled dataset (printing its summary) the first time; later, one line."""
    from crowdquant.cli.data import run_build
    from crowdquant.data.release import DatasetVersion, ReleaseError
    from crowdquant.data.sources import BundledSource

    if not (settings.datasets_dir / DATASET_VERSION).exists():
        return run_build(BundledSource(), version=DATASET_VERSION)
    try:
        version = DatasetVersion.open(DATASET_VERSION, settings.datasets_dir, settings.operator_dir)
        summary = version.build_info()["summary"]
    except (ReleaseError, OSError, KeyError, ValueError) as exc:
        raise _fail(f"dataset version {DATASET_VERSION} is unreadable: {exc}") from exc
    splits = summary["splits"]
    _say(
        f"dataset version {DATASET_VERSION} is already built: {summary['tickers']} stocks,"
        f" {summary['features']} features, {splits['train']['eras']} train and"
        f" {splits['validation']['eras']} validation eras"
    )
    return version


def ensure_tournament(ops: Infrastructure, session: Session, version: DatasetVersion) -> Tournament:
    from crowdquant.cli.operator import create_published_tournament
    from crowdquant.tournament.tournaments import TournamentNotFound, get_tournament

    try:
        tournament = get_tournament(session, TOURNAMENT)
    except TournamentNotFound:
        tournament, _ = create_published_tournament(
            ops, session, TOURNAMENT, TOURNAMENT_NAME, Rules.CLASSIC, Cadence.DAILY, version
        )
        _say(f"created tournament {TOURNAMENT} ({TOURNAMENT_NAME})")
        return tournament
    _say(f"tournament {tournament.number} ({tournament.name}) exists")
    return tournament


def ensure_open_round(
    ops: Infrastructure, session: Session, tournament: Tournament, replay_weeks: int
) -> Round:
    from crowdquant.cli.operator import open_next_round
    from crowdquant.tournament.rounds import current_round, is_open

    latest = current_round(session, tournament)
    if latest is not None and is_open(latest, ops.clock.now()):
        _say(f"round {latest.number} is open")
        return latest
    opened = open_next_round(ops, session, tournament, now=True, replay_weeks=replay_weeks)
    _say(f"opened round {opened.number}")
    return opened


def ensure_participant(
    ops: Infrastructure, session: Session, tournament: Tournament
) -> DemoParticipant:
    from crowdquant.cli.simulate import write_private
    from crowdquant.tournament.accounts import UnknownAccount, create_api_key, get_account, sign_up
    from crowdquant.tournament.models import create_model, list_models
    from crowdquant.tournament.staking import grant_nmr

    try:
        account = get_account(session, USERNAME)
        _say(f"participant {USERNAME} exists")
    except UnknownAccount:
        # the demo participant signs in with its API key only; nobody needs the password
        account = sign_up(session, ops.clock, USERNAME, EMAIL, secrets.token_urlsafe(24))
        _say(f"created participant {USERNAME}")
    models = {model.name: model for model in list_models(session, account, tournament.number)}
    model = models.get(MODEL_NAME) or create_model(
        session, ops.clock, account, tournament.number, MODEL_NAME
    )
    path = ops.settings.home / CREDENTIALS_FILE
    key = _stored_key(ops, session, path, account.id)
    if key is None:
        new = create_api_key(session, ops.clock, account, KEY_NAME, list(KEY_SCOPES))
        key = new.public_id, new.secret
        write_private(path, {"username": USERNAME, "public_id": key[0], "secret": key[1]})
    books = ops.ledger
    books.genesis(session)
    grant_nmr(session, books, account, DEMO_GRANT, f"demo:{account.id}")
    return DemoParticipant(USERNAME, key[0], key[1], model.name, str(model.id), path)


def _stored_key(
    ops: Infrastructure, session: Session, path: Path, account_id: uuid.UUID
) -> tuple[str, str] | None:
    """The key kept by an earlier run, if it still works for the demo account."""
    from crowdquant.cli.simulate import key_works

    try:
        stored = json.loads(path.read_text())
        key = str(stored["public_id"]), str(stored["secret"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return key if key_works(ops, session, account_id, key, KEY_SCOPES) else None


# --- the command -------------------------------------------------------------------------------


def prepare(settings: Settings, clock: Clock) -> Demo:
    """Every step up to serving, each in its own transaction."""
    from crowdquant.cli.operator import _in_transaction, operator
    from crowdquant.cli.simulate import enrol_bots
    from crowdquant.simulate.bots import ARCHETYPES, population
    from crowdquant.tournament.tournaments import get_tournament

    version = ensure_dataset(settings)
    with operator(settings, clock) as ops:
        tournament = _in_transaction(ops, lambda session: ensure_tournament(ops, session, version))
        weeks = replay_weeks(version, tournament)
        round_ = _in_transaction(
            ops,
            lambda session: ensure_open_round(
                ops, session, get_tournament(session, TOURNAMENT), weeks
            ),
        )
        participant = _in_transaction(
            ops, lambda session: ensure_participant(ops, session, tournament)
        )
        # one bot of each mechanism's archetype (analysts only fill the simulator's crowds)
        bots = population({name: 1 for name in ARCHETYPES if name != "analyst"}, BOT_STAKE)
        keys = _in_transaction(
            ops, lambda session: enrol_bots(ops, session, bots, settings.home / BOTS_FILE)
        )
    _say(f"{len(bots)} bots play beside you: {', '.join(bot.username for bot in bots)}")
    return Demo(tournament, round_, participant, bots, keys, weeks)


def replay_weeks(version: DatasetVersion, tournament: Tournament) -> int:
    """How many weeks behind the calendar the recorded market is replayed: the tournament's
    first round shows the market `REPLAY_YEARS` before the recording ends (whole weeks, so a
    Monday round still shows a Monday)."""
    last = date.fromisoformat(str(version.eras()["date"].iloc[-1])[:10])
    shown_first = last - timedelta(days=round(365.25 * REPLAY_YEARS))
    return max(0, (tournament.created_at.date() - shown_first).days // 7)


def start_time(settings: Settings) -> datetime:
    """Where the demo's clock starts: now, or later where an earlier run stopped: the clock
    it kept, or the newest round's opening if that is later (a run that was killed kept no
    clock), just after it if the round is closed (by hand, maybe before its close time)."""
    from crowdquant.cli.operator import _in_transaction, operator
    from crowdquant.clock import SystemClock
    from crowdquant.db.models import RoundStatus

    moments = [SystemClock().now()]
    try:
        stored = datetime.fromisoformat(json.loads((settings.home / CLOCK_FILE).read_text()))
        moments.append(_utc(stored))
    except (OSError, ValueError, TypeError):
        pass
    with operator(settings) as ops:
        newest = _in_transaction(ops, _newest_round)
    if newest is not None:
        opened, status = _utc(newest.open_time), newest.status
        moments.append(opened if status is RoundStatus.OPEN else opened + AFTER_CLOSED_ROUND)
    return max(moments)


def _newest_round(session: Session) -> Round | None:
    from crowdquant.tournament.rounds import current_round
    from crowdquant.tournament.tournaments import TournamentNotFound, get_tournament

    try:
        return current_round(session, get_tournament(session, TOURNAMENT))
    except TournamentNotFound:
        return None


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def keep_time(settings: Settings, clock: Clock) -> None:
    (settings.home / CLOCK_FILE).write_text(json.dumps(clock.now().isoformat()))


def snippet(url: str, tournament: Tournament, participant: DemoParticipant) -> list[str]:
    """Five lines of a numerapi script that takes part in the demo."""
    from crowdquant.server.serve import url_line

    live = f"{tournament.dataset_version}/live.parquet"
    return [
        "import numerapi",
        url_line(url),
        f'napi = numerapi.NumerAPI("{participant.public_id}", "{participant.secret}")',
        f'napi.download_dataset("{live}", "live.parquet")  # the ids to predict',
        f'napi.upload_predictions("predictions.csv", model_id="{participant.model_id}")'
        "  # columns: id, prediction",
    ]


def _say(text: str) -> None:
    console.print(text, soft_wrap=True)


def _code(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def print_instructions(url: str, demo: Demo, day_seconds: float) -> None:
    from crowdquant.server.serve import url_line

    console.rule("crowdquant demo")
    _say(round_line(demo.tournament.number, demo.round))
    pace = "as fast as it can" if day_seconds <= 0 else f"a day every {day_seconds:g} s"
    _say(
        f"The clock runs fast ({pace}): rounds open Tuesday to Saturday and resolve about a"
        " month later, paying or burning stakes; the bots play every round."
    )
    participant = demo.participant
    _say(
        f"\nDemo participant [bold]{participant.username}[/], model {participant.model_name}"
        f" (its key is kept in {participant.kept_in}, for this local demo only):"
    )
    _code(f"public id:  {participant.public_id}")
    _code(f"secret key: {participant.secret}")
    _code(f"model id:   {participant.model_id}")
    _say(f"\nThe site: {url} (sign up, then the dashboard; the leaderboard; past rounds)")
    _say("\nParticipants add this line to their numerapi scripts:")
    _code(url_line(url))
    _say("\nor, as the demo participant:")
    for line in snippet(url, demo.tournament, participant):
        _code(line)
    _say(
        f"\n{participant.username} holds 1,000 NMR to stake:"
        f' napi.stake_increase(10, model_id="{participant.model_id}")'
    )
    console.rule()


def narrate(step: Step, sessions: sessionmaker[Session]) -> None:
    """What just happened, one line each, stamped with the simulated time."""
    from crowdquant.tournament.scheduler import RoundClosed, RoundOpened, RoundResolved, TickFailed

    when = f"[dim]{step.at:%a %d %b %Y %H:%M}[/]"
    for event in step.events:
        if isinstance(event, RoundOpened | RoundClosed):
            _say(f"{when} {event}")
        elif isinstance(event, RoundResolved):
            _say(f"{when} {event}: {_money(sessions, event.round)}")
        elif isinstance(event, TickFailed):
            _say(f"{when} [yellow]{str(event).splitlines()[0]}[/]")
    if step.played:
        _say(f"{when} {len(step.played)} bot(s) uploaded predictions")
    for failure in step.failed:
        _say(f"{when} [yellow]bot {failure.splitlines()[0]}[/]")


def _money(sessions: sessionmaker[Session], number: int) -> str:
    from crowdquant.db.session import transaction
    from crowdquant.tournament.resolution import round_result
    from crowdquant.tournament.rounds import get_round
    from crowdquant.tournament.tournaments import get_tournament

    with transaction(sessions) as session:
        round_ = get_round(session, get_tournament(session, TOURNAMENT), number)
        result = round_result(session, round_)
    if result is None:
        return "no result"
    return (
        f"{result.participants} models,"
        f" {console_amount(result.nmr_paid, Currency.NMR)} paid,"
        f" {console_amount(result.nmr_burned, Currency.NMR)} burned"
    )


def play(
    server: Server,
    clock: AcceleratedClock,
    demo: Demo,
    settings: Settings,
    until: datetime | None = None,
) -> None:
    """The demo's worker: drive the tournament until the server stops, or, given `until`,
    until the clock reaches it, then stop the server."""
    from crowdquant.simulate.bots import Participant
    from crowdquant.simulate.driver import Driver
    from crowdquant.tournament.calendar import schedule_for

    url = server.url  # read while the server's socket is open: Ctrl-C may come at once

    def work(stop: threading.Event) -> None:
        clock.sleep = stop.wait  # Ctrl-C ends a wait for real time at once
        players = [
            (bot, Participant(url, *demo.keys[bot.username], TOURNAMENT)) for bot in demo.bots
        ]
        schedule = schedule_for(demo.tournament.cadence, demo.tournament.settings)
        driver = Driver(clock, server.scheduler, [schedule], players)
        try:
            while not stop.is_set() and (until is None or clock.now() < until):
                step = driver.step()
                if not stop.is_set():
                    narrate(step, server.scheduler.sessions)
            server.server.should_exit = True  # the time asked for is up
        finally:
            keep_time(settings, clock)
            for _, client in players:
                client.close()

    server.run(work)


def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8000,
    day_seconds: Annotated[
        float, typer.Option(min=0, help="real seconds a simulated day lasts (0: no waiting)")
    ] = 6.0,
    days: Annotated[
        float | None,
        typer.Option(min=0, help="stop after this many simulated days (default: at Ctrl-C)"),
    ] = None,
) -> None:
    """Run a living tournament here: the bundled dataset, tournament 8 on an accelerated
    clock, bots playing every round, a demo participant, and the server for numerapi scripts
    and the site, until Ctrl-C."""
    from crowdquant.server.bootstrap import printable_url
    from crowdquant.server.serve import build_server
    from crowdquant.settings import Settings
    from crowdquant.simulate.clock import AcceleratedClock

    settings = Settings()
    if settings.mode != "local":
        raise _fail("the demo prints a participant's secret key: it runs in local mode only")
    speed = None if day_seconds == 0 else 86_400 / day_seconds
    clock = AcceleratedClock(start_time(settings), speed)
    until = None if days is None else clock.now() + timedelta(days=days)
    found = prepare(settings, clock)
    try:
        server = build_server(
            settings,
            host=host,
            port=port,
            clock=clock,
            replay_weeks={TOURNAMENT: found.replay_weeks},
            log_level="warning",
            warn=console.print,
        )
    except Exception as exc:
        raise _fail(f"cannot start: {str(exc) or repr(exc)}") from exc
    print_instructions(server.url, found, day_seconds)
    how_long = "until Ctrl-C" if days is None else f"for {days:g} simulated day(s) or until Ctrl-C"
    _say(f"serving {printable_url(settings.database)} {how_long}")
    # the narration tells the story, failures included
    logging.getLogger("crowdquant").setLevel(logging.WARNING)
    logging.getLogger("crowdquant.tournament.scheduler").setLevel(logging.CRITICAL)
    play(server, clock, found, settings, until)
    _say("stopped")
