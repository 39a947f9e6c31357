"""`crowdquant demo`: a whole tournament on this machine, ready for a numerapi script.

Each step first looks for what an earlier run made, so running the demo again reuses the
dataset, the tournament, the open round and the participant:

1. build the bundled real-market dataset once (version `bundled-demo`);
2. migrate the database (a SQLite file and local files in CROWDQUANT_HOME by default);
3. create tournament 8 (numerapi's default) with daily rounds and the classic rules;
4. open a round now unless one is open, as `crowdquant round open --now` does: the daily
   calendar opens short windows Tuesday to Saturday only, the demo's round opens at once;
5. record the ledger's genesis, create the participant `demo` with the model `demo_model`,
   a read+upload+stake API key, whose secret is kept in CROWDQUANT_HOME/demo-participant.json
   (a local demo only), and 1,000 NMR granted from the treasury once;
6. print what a participant needs, then serve the API and the scheduler until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from crowdquant.cli.data import _fail, console, run_build
from crowdquant.cli.operator import (
    Operator,
    _in_transaction,
    _printable_url,
    build_server,
    create_published_tournament,
    open_next_round,
    operator,
    round_line,
    url_line,
)
from crowdquant.clock import SystemClock
from crowdquant.data.release import DatasetVersion, ReleaseError
from crowdquant.data.sources import BundledSource
from crowdquant.db.models import ApiScope, Cadence, Round, Rules, Tournament
from crowdquant.ledger import NMR_UNIT
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import (
    AccountError,
    UnknownAccount,
    authenticate_api_key,
    create_api_key,
    get_account,
    sign_up,
)
from crowdquant.tournament.calendar import next_round, schedule_for
from crowdquant.tournament.models import create_model, list_models
from crowdquant.tournament.rounds import current_round, is_open
from crowdquant.tournament.staking import grant_nmr
from crowdquant.tournament.tournaments import TournamentNotFound, get_tournament

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


@dataclass(frozen=True)
class Participant:
    """The demo participant's API key (secret included) and model."""

    username: str
    public_id: str
    secret: str
    model_name: str
    model_id: str
    kept_in: Path


# --- the steps, each reusing what an earlier run made ----------------------------------------


def ensure_dataset(settings: Settings) -> DatasetVersion:
    """Build the bundled dataset (printing its summary) the first time; later, one line."""
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


def ensure_tournament(ops: Operator, session: Session, version: DatasetVersion) -> Tournament:
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


def ensure_open_round(ops: Operator, session: Session, tournament: Tournament) -> Round:
    latest = current_round(session, tournament)
    if latest is not None and is_open(latest, ops.clock.now()):
        _say(f"round {latest.number} is open")
        return latest
    opened = open_next_round(ops, session, tournament, now=True)
    _say(f"opened round {opened.number}")
    return opened


def ensure_participant(ops: Operator, session: Session, tournament: Tournament) -> Participant:
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
        _write_private(path, {"username": USERNAME, "public_id": key[0], "secret": key[1]})
    books = ops.ledger
    books.genesis(session)
    grant_nmr(session, books, account, DEMO_GRANT, f"demo:{account.id}")
    return Participant(USERNAME, key[0], key[1], model.name, str(model.id), path)


def _stored_key(
    ops: Operator, session: Session, path: Path, account_id: uuid.UUID
) -> tuple[str, str] | None:
    """The key kept by an earlier run, if it still works for the demo account."""
    try:
        stored = json.loads(path.read_text())
        public_id, secret = str(stored["public_id"]), str(stored["secret"])
        for scope in KEY_SCOPES:
            if authenticate_api_key(session, ops.clock, public_id, secret, scope).id != account_id:
                return None
    except (OSError, ValueError, KeyError, TypeError, AccountError):
        return None
    return public_id, secret


def _write_private(path: Path, content: dict[str, str]) -> None:
    """Write `content` as JSON readable by its owner only, replacing the file at once."""
    temporary = path.with_name(f".{path.name}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(content, file, indent=2)
    os.replace(temporary, path)


# --- the command -------------------------------------------------------------------------------


def prepare(settings: Settings) -> tuple[Tournament, Round, Participant]:
    """Every step up to serving, each in its own transaction."""
    version = ensure_dataset(settings)
    with operator(settings) as ops:
        tournament = _in_transaction(ops, lambda session: ensure_tournament(ops, session, version))
        round_ = _in_transaction(
            ops,
            lambda session: ensure_open_round(ops, session, get_tournament(session, TOURNAMENT)),
        )
        participant = _in_transaction(
            ops, lambda session: ensure_participant(ops, session, tournament)
        )
    return tournament, round_, participant


def snippet(url: str, tournament: Tournament, participant: Participant) -> list[str]:
    """Five lines of a numerapi script that takes part in the demo."""
    live = f"{tournament.dataset_version}/live.parquet"
    return [
        "import numerapi",
        url_line(url),
        f'napi = numerapi.NumerAPI("{participant.public_id}", "{participant.secret}")',
        f'napi.download_dataset("{live}", "live.parquet")  # the ids to predict',
        f'napi.upload_predictions("predictions.csv", model_id="{participant.model_id}")'
        "  # columns: id, prediction",
    ]


def _until(moment: datetime, now: datetime) -> str:
    minutes = max(0, int((moment - now).total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"


def _say(text: str) -> None:
    console.print(text, soft_wrap=True)


def _code(line: str) -> None:
    console.print(line, markup=False, highlight=False, soft_wrap=True)


def print_instructions(
    url: str, tournament: Tournament, round_: Round, participant: Participant, now: datetime
) -> None:
    console.rule("crowdquant demo")
    _say(round_line(tournament.number, round_))
    following = next_round(schedule_for(tournament.cadence, tournament.settings), round_.close_time)
    _say(
        f"It closes in {_until(round_.close_time, now)}; then the calendar opens the next at"
        f" {following.open_time:%Y-%m-%d %H:%M} UTC (or run the demo again to open one at once)."
    )
    _say(
        f"\nDemo participant [bold]{participant.username}[/], model {participant.model_name}"
        f" (its key is kept in {participant.kept_in}, for this local demo only):"
    )
    _code(f"public id:  {participant.public_id}")
    _code(f"secret key: {participant.secret}")
    _code(f"model id:   {participant.model_id}")
    _say(f"\nThe site: {url}/ (sign up, then the dashboard; the leaderboard; past rounds)")
    _say("\nParticipants add this line to their numerapi scripts:")
    _code(url_line(url))
    _say("\nor, as the demo participant:")
    for line in snippet(url, tournament, participant):
        _code(line)
    _say(
        f"\n{participant.username} holds 1,000 NMR to stake:"
        f' napi.stake_increase(10, model_id="{participant.model_id}")'
    )
    console.rule()


def demo(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port to listen on (0: any free port)")] = 8000,
) -> None:
    """Run a whole tournament here: the bundled dataset, tournament 8 with a round open now,
    a demo participant, and the server for numerapi scripts, until Ctrl-C."""
    settings = Settings()
    if settings.mode != "local":
        raise _fail("the demo prints a participant's secret key: it runs in local mode only")
    tournament, round_, participant = prepare(settings)
    try:
        server = build_server(settings, host=host, port=port)
    except Exception as exc:
        raise _fail(f"cannot start: {exc}") from exc
    print_instructions(server.url, tournament, round_, participant, SystemClock().now())
    _say(f"serving {_printable_url(settings.database)} until Ctrl-C")
    server.run()
    _say("stopped")
