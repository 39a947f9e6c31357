"""`crowdquant demo`: a living tournament on this machine, played by bots, open to numerapi.

Each step first looks for what an earlier run made, so running the demo again reuses the
dataset, the tournament, the participants and the simulated time reached:

1. build the market's dataset once: by default a synthetic market of 1,000 stocks with a
   planted signal (version `synthetic-demo`), ending the week before the demo's clock starts
   so its rounds carry on from it; with `--market bundled`, the bundled real panel of 20
   stocks (version `bundled-demo`). A home whose tournament exists keeps its market;
2. migrate the database (a SQLite file and local files in CROWDQUANT_HOME by default);
3. create tournament 8 (numerapi's default) with daily rounds and the classic rules; the
   synthetic market goes on generating the calendar's days, the recorded one (1990-2022) is
   replayed some years behind the calendar, so rounds are scored on its real prices;
4. start an accelerated clock where the last run stopped (or now), a day passing every
   `--day-seconds`, and open a round at once unless one is open (a round closed by hand
   makes way at once);
5. record the ledger's genesis; create the participant `demo` with the model `demo_model`, a
   read+upload+stake API key, whose secret is kept in CROWDQUANT_HOME/demo-participant.json
   (a local demo only), and 1,000 NMR granted from the treasury once; and the bots of
   `crowdquant.simulate.bots`, one of each archetype, with 1,000 NMR each;
6. print what a participant needs, then serve the API and the site while the driver moves
   the clock, ticks the scheduler and lets the bots play, telling what happens, until
   Ctrl-C (or `--days` simulated days). On the first open round of the run, and the first
   of each later week, the clock keeps real time for `--window` (or until the round
   closes), so a person can take part on time; the console says when the window opens
   and closes, and tells the uploads, stakes at risk, scores and payouts of every account
   but the bots as they happen.

With `--ledger evm`, the token's supply and every burn are on a local EVM chain: the demo
starts Foundry's anvil on loopback (its state kept in CROWDQUANT_HOME, so a later run
carries on the same chain), deploys the contracts once and keeps the books with the `evm`
ledger backend, sending each burn to the chain as rounds resolve.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import threading
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
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
    from web3 import Web3

    from crowdquant.clock import Clock
    from crowdquant.data.release import DatasetVersion
    from crowdquant.data.sources import SyntheticSource
    from crowdquant.db.models import Round, Tournament
    from crowdquant.server.bootstrap import Infrastructure
    from crowdquant.server.serve import Server
    from crowdquant.settings import Settings
    from crowdquant.simulate.bots import Bot
    from crowdquant.simulate.clock import AcceleratedClock
    from crowdquant.simulate.driver import Driver, Step
    from crowdquant.tournament.activity import Activity

SYNTHETIC = "synthetic"
BUNDLED = "bundled"
DATASET_VERSIONS = {SYNTHETIC: "synthetic-demo", BUNDLED: "bundled-demo"}
SYNTHETIC_STOCKS = 1_000
SYNTHETIC_WEEKS = 220
"""Weeks of synthetic history in the dataset (warm-up included): some four years."""
SYNTHETIC_ALPHA = 8e-4
"""The synthetic market's planted signal: strong enough for the example model to earn."""
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
WINDOW = "3m"
"""How long the clock keeps real time while a round is open, by default."""
POLL = timedelta(seconds=5)
"""In a window, how often the clock stops to tick the scheduler and tell what happened."""
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


def market_of(version: str) -> str:
    """The demo's market a dataset version was built for (`synthetic` unless bundled)."""
    return BUNDLED if version == DATASET_VERSIONS[BUNDLED] else SYNTHETIC


def synthetic_source(starts: datetime, stocks: int = SYNTHETIC_STOCKS) -> SyntheticSource:
    """The demo's synthetic market of `stocks` stocks, its history ending a week or so
    before `starts`, so the rounds of a clock starting then carry on from the dataset's last
    era."""
    from crowdquant.data.sources import SyntheticSource
    from crowdquant.data.sources.synthetic import SyntheticConfig

    monday = starts.date() - timedelta(days=starts.weekday())
    first = monday - timedelta(weeks=SYNTHETIC_WEEKS + 1)
    market = SyntheticConfig(
        n_stocks=stocks,
        n_weeks=SYNTHETIC_WEEKS,
        start=first,
        alpha_strength=SYNTHETIC_ALPHA,
    )
    return SyntheticSource(market=market)


def say_market(market: str, asked: str) -> None:
    """Which market the demo runs on, and why."""
    if market == SYNTHETIC:
        what = (
            "the synthetic market: stocks whose returns carry a planted signal, enough rows a"
            " round for scores and payouts to mean something"
        )
    else:
        what = (
            "the bundled market: 20 real S&P 500 stocks (1990-2022), replayed"
            f" {REPLAY_YEARS} years behind the calendar; too few stocks for scores to mean"
            " much, but real prices"
        )
    if market != asked:
        why = f"tournament {TOURNAMENT} was made on it by an earlier run in this home"
    elif market == SYNTHETIC:
        why = "the default; --market bundled runs on real prices"
    else:
        why = "asked for with --market bundled"
    _say(f"market: {what} ({why})")


def ensure_dataset(
    settings: Settings, market: str, starts: datetime, stocks: int = SYNTHETIC_STOCKS
) -> DatasetVersion:
    """Build the market's dataset (printing its summary) the first time; later, one line."""
    from crowdquant.cli.data import run_build
    from crowdquant.data.release import DatasetVersion, ReleaseError
    from crowdquant.data.sources import BundledSource

    name = DATASET_VERSIONS[market]
    if not (settings.datasets_dir / name).exists():
        source = BundledSource() if market == BUNDLED else synthetic_source(starts, stocks)
        return run_build(source, version=name)
    try:
        version = DatasetVersion.open(name, settings.datasets_dir, settings.operator_dir)
        summary = version.build_info()["summary"]
        corr = float(summary["example_validation_corr"]["mean"])
    except (ReleaseError, OSError, KeyError, TypeError, ValueError) as exc:
        raise _fail(f"dataset version {name} is unreadable: {exc}") from exc
    splits = summary["splits"]
    _say(
        f"dataset version {name} is already built: {summary['tickers']} stocks,"
        f" {summary['features']} features, {splits['train']['eras']} train and"
        f" {splits['validation']['eras']} validation eras, example model validation CORR"
        f" {corr:+.4f}"
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


# --- the chain (--ledger evm) ------------------------------------------------------------------

LEDGERS = ("sql", "evm")
CHAIN_FILE = "demo-chain.json"
"""The contracts the demo deployed, in CROWDQUANT_HOME."""
CHAIN_STATE = "demo-chain-state.json"
"""anvil's state, kept in CROWDQUANT_HOME between runs."""


@contextmanager
def demo_chain(settings: Settings, binary: Path) -> Iterator[Settings]:
    """anvil (`binary`) on loopback while the block runs, its state kept in the home; the
    contracts deployed once (the operator's key holding the supply as the treasury); the
    settings of the `evm` ledger on them."""
    from eth_account import Account
    from pydantic import SecretStr
    from web3 import Web3

    from crowdquant.ledger.evm.deploy import deploy_contracts
    from crowdquant.ledger.evm.local_node import (
        ANVIL_CHAIN_ID,
        ANVIL_DEV_KEY,
        local_node,
    )

    require_anvil(binary)
    settings.home.mkdir(parents=True, exist_ok=True)
    record = settings.home / CHAIN_FILE
    with local_node(binary, arguments=["--state", str(settings.home / CHAIN_STATE)]) as url:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))
        contracts = _deployed(record, w3)
        if contracts is None:
            operator = Account.from_key(ANVIL_DEV_KEY).address
            made = deploy_contracts(w3, deployer=operator, treasury=operator, operator=operator)
            contracts = {"token": made.token.address, "tournament": made.tournament.address}
            record.write_text(json.dumps(contracts))
            _say(f"deployed the token at {contracts['token']} on anvil ({url})")
        else:
            _say(f"the token is at {contracts['token']} on anvil ({url})")
        yield settings.model_copy(
            update={
                "ledger_backend": "evm",
                "evm_rpc_url": url,
                "evm_chain_id": ANVIL_CHAIN_ID,
                "evm_token_address": contracts["token"],
                "evm_tournament_address": contracts["tournament"],
                "evm_operator_key": SecretStr(ANVIL_DEV_KEY),
                "evm_operator_keystore": None,
            }
        )


def require_anvil(binary: Path) -> Path:
    """`binary`, if it is there; else the error naming it and how to install anvil."""
    from crowdquant.ledger.evm.local_node import INSTALL_ANVIL

    if not binary.is_file():
        raise _fail(
            f"--ledger evm runs Foundry's anvil, and there is none at {binary}: install it with"
            f" `{INSTALL_ANVIL}` in the project's folder (or name one with CROWDQUANT_ANVIL)"
        )
    return binary


def _deployed(record: Path, w3: Web3) -> dict[str, str] | None:
    """The contracts an earlier run deployed, if the chain still holds them."""
    try:
        contracts = json.loads(record.read_text())
        addresses = {name: str(contracts[name]) for name in ("token", "tournament")}
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(w3.is_address(a) and w3.eth.get_code(a) for a in addresses.values()):  # type: ignore[arg-type]
        return None
    return addresses


def refuse_database_books(settings: Settings) -> None:
    """A home whose tournament kept its books in the database stays so: its books hold
    burns that no chain has seen."""
    from crowdquant.cli.operator import _in_transaction, operator

    if (settings.home / CHAIN_FILE).exists():
        return
    with operator(settings) as ops:
        made = _in_transaction(ops, _tournament_of)
    if made is not None:
        raise _fail(
            f"the tournament in {settings.home} keeps its books in the database:"
            " run --ledger evm with another CROWDQUANT_HOME"
        )


# --- the command -------------------------------------------------------------------------------


def prepare(
    settings: Settings, clock: Clock, asked: str = SYNTHETIC, stocks: int = SYNTHETIC_STOCKS
) -> Demo:
    """Every step up to serving, each in its own transaction, on the `asked` market unless
    the home's tournament runs on the other."""
    from crowdquant.cli.operator import _in_transaction, operator
    from crowdquant.cli.simulate import enrol_bots
    from crowdquant.simulate.bots import ARCHETYPES, population
    from crowdquant.tournament.tournaments import get_tournament

    with operator(settings, clock) as ops:
        made = _in_transaction(ops, _tournament_of)
    market = asked if made is None else market_of(made.dataset_version)
    say_market(market, asked)
    version = ensure_dataset(settings, market, clock.now(), stocks)
    with operator(settings, clock) as ops:
        tournament = _in_transaction(ops, lambda session: ensure_tournament(ops, session, version))
        weeks = replay_weeks(version, tournament) if market == BUNDLED else 0
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


def _tournament_of(session: Session) -> Tournament | None:
    from crowdquant.tournament.tournaments import TournamentNotFound, get_tournament

    try:
        return get_tournament(session, TOURNAMENT)
    except TournamentNotFound:
        return None


def _newest_round(session: Session) -> Round | None:
    from crowdquant.tournament.rounds import current_round

    tournament = _tournament_of(session)
    return None if tournament is None else current_round(session, tournament)


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


def print_instructions(url: str, demo: Demo, day_seconds: float, window: timedelta) -> None:
    from crowdquant.server.serve import url_line

    console.rule("crowdquant demo")
    _say(round_line(demo.tournament.number, demo.round))
    pace = "as fast as it can" if day_seconds <= 0 else f"a day every {day_seconds:g} s"
    _say(
        f"The clock runs fast ({pace}): rounds open Tuesday to Saturday and resolve about a"
        " month later, paying or burning stakes; the bots play every round."
    )
    if window:
        _say(
            f"To give you time, the clock keeps real time for {_duration(window)} while the"
            " first round is open, and again on the first round of each week: the console"
            " says when such a window opens and closes; upload and stake in it."
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


def _stamp(moment: datetime) -> str:
    return f"[dim]{moment:%a %d %b %Y %H:%M}[/]"


def parse_window(text: str) -> timedelta:
    """A window's length: seconds, or a number with s, m or h ("90s", "3m"); 0 for none."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if found is None:
        raise _fail(f"--window {text!r} is not a duration: write e.g. 90s, 3m or 0")
    unit = {"": 1, "s": 1, "m": 60, "h": 3600}[found[2]]
    return timedelta(seconds=float(found[1]) * unit)


def _duration(length: timedelta) -> str:
    seconds = length.total_seconds()
    if seconds % 60:
        return f"{seconds:g} seconds"
    return "1 minute" if seconds == 60 else f"{seconds / 60:g} minutes"


@dataclass
class Windows:
    """When the clock keeps real time: for `length` from the first open round the run sees,
    and from the first round of each later week, or until that round closes; outside them
    it runs at `speed`."""

    length: timedelta
    speed: float | None
    url: str
    closes: datetime | None = None
    """The open window's end (None: no window open)."""
    round: int | None = None
    """The round of the newest window."""
    week: tuple[int, int] | None = None
    """The ISO year and week of the newest window's round."""
    step_size: timedelta = timedelta(hours=1)
    """The driver's step outside windows."""

    def follow(
        self, clock: AcceleratedClock, driver: Driver, open_round: tuple[int, datetime] | None
    ) -> None:
        """Open or close a window for the round open now (its number and close time)."""
        now = clock.now()
        if self.closes is not None:
            if now < self.closes and open_round is not None and open_round[0] == self.round:
                driver.step_size = min(POLL, self.closes - now)
                return
            clock.pace(self.speed)
            driver.step_size = self.step_size
            self.closes = None
            _say(
                f"{_stamp(now)} [bold]window closed[/]: round {self.round}"
                f" {'is closed' if open_round is None else 'stays open'}; the clock runs"
                " fast again"
            )
        if open_round is None or not self.length or open_round[0] == self.round:
            return
        number, close_time = open_round
        week = now.isocalendar()[:2]
        if week == self.week:
            return
        self.round, self.week = number, (week[0], week[1])
        self.closes = min(now + self.length, close_time)
        self.step_size = driver.step_size
        clock.pace(1.0)
        driver.step_size = min(POLL, self.closes - now)
        _say(
            f"{_stamp(now)} [bold]window open[/]: round {number} takes uploads and stakes, and"
            f" the clock keeps real time for {_duration(self.closes - now)}, until"
            f" {self.closes:%H:%M:%S} UTC: {self.url}"
        )


def open_round_now(
    sessions: sessionmaker[Session], clock: AcceleratedClock
) -> tuple[int, datetime] | None:
    """The demo tournament's open round, its number and close time (None: none is open)."""
    from crowdquant.db.session import transaction
    from crowdquant.tournament.rounds import current_round, is_open
    from crowdquant.tournament.tournaments import get_tournament

    with transaction(sessions) as session:
        latest = current_round(session, get_tournament(session, TOURNAMENT))
        if latest is None or not is_open(latest, clock.now()):
            return None
        return latest.number, _utc(latest.close_time)


@dataclass
class Watcher:
    """Tells what people (every account but the bots) do and get, as it happens: their
    uploads, stakes at risk, scores and payouts since `since`, each once."""

    sessions: sessionmaker[Session]
    bots: frozenset[str]
    since: datetime
    seen: set[object] = field(default_factory=set)

    def tell(self) -> None:
        from crowdquant.db.session import transaction
        from crowdquant.tournament.activity import activity_since
        from crowdquant.tournament.tournaments import get_tournament

        with transaction(self.sessions) as session:
            records = activity_since(
                session, get_tournament(session, TOURNAMENT), self.since, self.bots
            )
        for record in records:
            if record.id not in self.seen:
                self.seen.add(record.id)
                _say(f"{_stamp(record.at)} {describe(record)}")


def describe(record: Activity) -> str:
    """One line of a person's activity."""
    from crowdquant.tournament.activity import AtRisk, Scored, Uploaded

    who = f"[bold]{record.username}[/]/{record.model}"
    if isinstance(record, Uploaded):
        timing = "late: scored, never staked" if record.late else "on time"
        return f"{who} uploaded predictions to round {record.round} ({timing}, {record.status})"
    if isinstance(record, AtRisk):
        nmr = console_amount(record.nmr, Currency.NMR)
        return f"{who} has {nmr} at risk in round {record.round}"
    if isinstance(record, Scored):
        values = " · ".join(
            f"{metric.upper()} {'-' if value is None else f'{value:+.4f}'}"
            for metric, value in sorted(record.values.items())
        )
        return f"{who} round {record.round}, scoring day {record.day}: {values}"
    at_risk = console_amount(record.at_risk, Currency.NMR)
    if record.nmr == 0:
        return f"{who} round {record.round} resolved: nothing paid or burned ({at_risk} at risk)"
    verb = "paid" if record.nmr > 0 else "burned"
    amount = console_amount(abs(record.nmr), Currency.NMR)
    return f"{who} round {record.round} resolved: {amount} {verb} ({at_risk} at risk)"


def narrate(step: Step, sessions: sessionmaker[Session]) -> None:
    """What just happened, one line each, stamped with the simulated time."""
    from crowdquant.tournament.scheduler import (
        ClaimsPaid,
        RoundClosed,
        RoundOpened,
        RoundOpenedOnChain,
        RoundResolved,
        StakesLocked,
        TickFailed,
    )

    when = _stamp(step.at)
    for event in step.events:
        if isinstance(
            event, RoundOpened | RoundClosed | RoundOpenedOnChain | StakesLocked | ClaimsPaid
        ):
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
    window: timedelta = timedelta(0),
) -> None:
    """The demo's worker: drive the tournament until the server stops, or, given `until`,
    until the clock reaches it, then stop the server; keep real time in each `window`."""
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
        sessions = server.scheduler.sessions
        windows = Windows(window, clock.speed, url)
        watcher = Watcher(sessions, frozenset(demo.keys), clock.now())
        first = True
        try:
            if windows.length:  # a round open at the start gets its window at once
                windows.follow(clock, driver, open_round_now(sessions, clock))
            while not stop.is_set() and (until is None or clock.now() < until):
                step = driver.step()
                if stop.is_set():
                    break
                narrate(step, sessions)
                # people act through the server at any time: told at the next event, or at
                # once in a window
                if first or step.events or windows.closes is not None:
                    watcher.tell()
                    if windows.length:
                        windows.follow(clock, driver, open_round_now(sessions, clock))
                first = False
            server.server.should_exit = True  # the time asked for is up
        finally:
            clock.pace(windows.speed)
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
    market: Annotated[
        str,
        typer.Option(
            help="synthetic (1,000 stocks with a planted signal) or bundled (20 real stocks)"
        ),
    ] = SYNTHETIC,
    stocks: Annotated[
        int,
        typer.Option(min=100, help="stocks of the synthetic market (when its dataset is built)"),
    ] = SYNTHETIC_STOCKS,
    window: Annotated[
        str,
        typer.Option(
            help="how long the clock keeps real time while a round is open, once a week"
            " (90s, 3m; 0: never)"
        ),
    ] = WINDOW,
    ledger: Annotated[
        str,
        typer.Option(
            help="where the token is kept: sql (the database's books) or evm (its supply and"
            " burns on a local anvil node, with the contracts deployed on it)"
        ),
    ] = "sql",
) -> None:
    """Run a living tournament here: a market's dataset, tournament 8 on an accelerated
    clock, bots playing every round, a demo participant, and the server for numerapi scripts
    and the site, until Ctrl-C."""
    from crowdquant.settings import Settings

    if market not in DATASET_VERSIONS:
        raise _fail(f"unknown market {market!r}: use {SYNTHETIC} or {BUNDLED}")
    if ledger not in LEDGERS:
        raise _fail(f"unknown ledger {ledger!r}: use {' or '.join(LEDGERS)}")
    window_length = parse_window(window)
    settings = Settings()
    if settings.mode != "local":
        raise _fail("the demo prints a participant's secret key: it runs in local mode only")
    with ExitStack() as chain:
        if ledger == "evm":
            from crowdquant.ledger.evm.local_node import anvil_binary

            binary = require_anvil(anvil_binary())
            refuse_database_books(settings)
            settings = chain.enter_context(demo_chain(settings, binary))
        run_demo(settings, host, port, day_seconds, days, market, stocks, window_length)


def run_demo(
    settings: Settings,
    host: str,
    port: int,
    day_seconds: float,
    days: float | None,
    market: str,
    stocks: int,
    window_length: timedelta,
) -> None:
    """The demo on `settings`, from preparing it to stopping."""
    from crowdquant.server.bootstrap import printable_url
    from crowdquant.server.serve import build_server
    from crowdquant.simulate.clock import AcceleratedClock

    speed = None if day_seconds == 0 else 86_400 / day_seconds
    clock = AcceleratedClock(start_time(settings), speed)
    until = None if days is None else clock.now() + timedelta(days=days)
    found = prepare(settings, clock, market, stocks)
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
    print_instructions(server.url, found, day_seconds, window_length)
    how_long = "until Ctrl-C" if days is None else f"for {days:g} simulated day(s) or until Ctrl-C"
    _say(f"serving {printable_url(settings.database)} {how_long}")
    # the narration tells the story, failures included
    logging.getLogger("crowdquant").setLevel(logging.WARNING)
    logging.getLogger("crowdquant.tournament.scheduler").setLevel(logging.CRITICAL)
    play(server, clock, found, settings, until, window_length)
    _say("stopped")
