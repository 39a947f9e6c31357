"""A served tournament with money, for the end-to-end staking tests: participants with NMR
(granted by the operator after the genesis) and API keys with every scope, the app on a real
port for numerapi and REST, and a scheduler that freezes stakes at close, scores the rounds
on the wide synthetic market and resolves their payouts.

The clock runs in the synthetic market's own calendar (`live_market.MONDAY`), so every run
sees the same market: rounds are opened by the tests at the times they choose.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import numerapi
import numerapi.base_api
from argon2 import PasswordHasher
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import ApiScope, Cadence, Rules
from crowdquant.db.session import transaction
from crowdquant.ledger import AccountId, Ledger
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT, Currency
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.calendar import RoundTimes
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.rules2017_files import Rules2017Rounds
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.staking import grant_nmr
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..tournament.live_market import KEYS, MONDAY, local_storage
from ..tournament.scored_round import market_feed
from .server import serve

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
NMR = NMR_UNIT
SCOPES = [ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE]
START = MONDAY + timedelta(hours=9)


def nmr(units: int) -> Decimal:
    """10^-18 NMR units as the exact Decimal numerapi parses."""
    return Decimal(units).scaleb(-18)


@dataclass(frozen=True)
class TournamentSpec:
    number: int
    rules: Rules
    dataset_version: str
    settings: dict[str, Any] = field(default_factory=dict)
    cadence: Cadence = Cadence.DAILY


@dataclass
class Player:
    name: str
    account_id: uuid.UUID
    public_id: str
    secret: str
    models: dict[int, uuid.UUID]  # tournament number → the player's model in it

    @property
    def token(self) -> str:
        return f"Token {self.public_id}${self.secret}"


@dataclass
class StakedWorld:
    url: str
    home: Path
    clock: ManualClock
    sessions: sessionmaker[Session]
    storage: LocalStorage
    ledger: Ledger
    publisher: FeedPublisher
    scheduler: Scheduler
    players: dict[str, Player]

    def napi(self, name: str, tournament: int = 8) -> numerapi.NumerAPI:
        """`name`'s numerapi client, pointed at `tournament`."""
        player = self.players[name]
        client = numerapi.NumerAPI(player.public_id, player.secret)
        client.tournament_id = tournament
        return client

    def rest(self, name: str | None = None) -> httpx.Client:
        """A REST client of the API, with `name`'s key (or none)."""
        headers = {} if name is None else {"Authorization": self.players[name].token}
        return httpx.Client(base_url=f"{self.url}/api/v1", headers=headers, timeout=30)

    def model(self, name: str, tournament: int = 8) -> uuid.UUID:
        return self.players[name].models[tournament]

    def balance(self, account: AccountId, currency: Currency = Currency.NMR) -> int:
        with transaction(self.sessions) as session:
            return self.ledger.balance(session, account, currency)

    def open_round(self, tournament: int, *, resolve_after: timedelta) -> int:
        """Open `tournament`'s next round now, closing in an hour."""
        now = self.clock.now()
        times = RoundTimes(
            open_time=now - timedelta(minutes=5),
            close_staking_time=now + timedelta(hours=1),
            close_time=now + timedelta(hours=1),
            era_date=previous_weekday(now.date()),
            resolve_time=now + resolve_after,
        )
        with transaction(self.sessions) as session:
            found = get_tournament(session, tournament)
            return open_round(session, self.clock, found, self.publisher, times=times).number

    def tick_at(self, moment: datetime) -> list[str]:
        """The clock set to `moment`, then one scheduler tick: what happened."""
        self.clock.set(moment)
        return [str(event) for event in self.scheduler.tick()]


def previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() > 4:
        day -= timedelta(days=1)
    return day


@contextmanager
def staked_world(
    sessions: sessionmaker[Session],
    tmp_path: Path,
    tournaments: Sequence[TournamentSpec],
    players: Sequence[str],
    grant: int,
    *,
    clock: ManualClock | None = None,
    scheduler_ledger: SqlLedger | None = None,
    ledger: Ledger | None = None,
    scored: bool = True,
    legacy_version: DatasetVersion | None = None,
) -> Iterator[StakedWorld]:
    """The world served: each player holds `grant` (10^-18 NMR units) and one model in each
    tournament (``<name>_<number>``). Storage lives in ``<tmp_path>/home/files``, where the
    CLI looks with ``CROWDQUANT_HOME=<tmp_path>/home``. The clock starts at `START` unless
    given; `scheduler_ledger` is the books the scheduler posts through (default: the
    world's); without `scored`, rounds resolve unscored at their resolve time. With
    `legacy_version`, the 2017 tournaments' rounds publish their CSV files from it; `ledger`
    replaces the database's books (an `evm` one)."""
    clock = clock or ManualClock(START)
    home = tmp_path / "home"
    storage = local_storage(home / "files")
    ledger = ledger or SqlLedger(clock)
    feed = market_feed()
    legacy = None if legacy_version is None else Rules2017Rounds(legacy_version, KEYS)
    publisher = FeedPublisher(feed, storage, files_2017=legacy)
    runtimes = (  # rounds are opened by the tests: no publisher
        {spec.number: TournamentRuntime(targets=FeedTargets(feed)) for spec in tournaments}
        if scored
        else {}
    )
    scheduler = Scheduler(
        sessions,
        clock,
        runtimes,
        storage=storage,
        ledger=scheduler_ledger or ledger,
    )
    found: dict[str, Player] = {}
    with transaction(sessions) as session:
        ledger.genesis(session)
        for spec in tournaments:
            create_tournament(
                session,
                clock,
                spec.number,
                f"t{spec.number}",
                spec.rules,
                spec.cadence,
                spec.dataset_version,
                spec.settings,
            )
        for name in players:
            account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            models = {
                spec.number: create_model(
                    session, clock, account, spec.number, model_name(name, spec.number)
                ).id
                for spec in tournaments
            }
            key = create_api_key(session, clock, account, "all", SCOPES)
            grant_nmr(session, ledger, account, grant, f"welcome-{name}")
            found[name] = Player(name, account.id, key.public_id, key.secret, models)
    app = create_app(
        Settings(mode="local", home=home),
        clock=clock,
        sessions=sessions,
        storage=storage,
        ledger=ledger,
    )
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield StakedWorld(
                url, home, clock, sessions, storage, ledger, publisher, scheduler, found
            )
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def model_name(player: str, tournament: int) -> str:
    return f"{player}_{tournament}"
