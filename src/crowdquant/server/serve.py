"""`crowdquant serve`'s server: the HTTP app, the round scheduler and the diagnostics worker
on one migrated database, uvicorn on a listening socket.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

import uvicorn
from fastapi import FastAPI
from sqlalchemy import Engine

from crowdquant.clock import Clock, SystemClock
from crowdquant.data.feed import FeedError
from crowdquant.data.keys import KeyfileError
from crowdquant.data.panel import PanelError
from crowdquant.data.release import ReleaseError
from crowdquant.db.session import transaction
from crowdquant.ledger import LedgerError
from crowdquant.server.access_log import log_config
from crowdquant.server.app import create_app
from crowdquant.server.bootstrap import Infrastructure, bootstrap
from crowdquant.settings import MIN_SECRET_LENGTH, Settings, secret_key_of, weak_secret
from crowdquant.storage import StorageError
from crowdquant.tournament.diagnostics import DiagnosticsWorker, StoredValidationLoader
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.retention import Retention
from crowdquant.tournament.runtime import TournamentRuntime, tournament_runtime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.tournaments import list_tournaments
from crowdquant.tournament.validator import Validator

MARKET_LAG = timedelta(days=7)
"""How far behind today a recorded market may end and still score rounds as it grows."""

SERVICE_ERRORS: tuple[type[Exception], ...] = (
    ServiceError,
    LedgerError,
    ReleaseError,
    FeedError,
    KeyfileError,
    PanelError,
    StorageError,
)
"""How the services, the ledger, a dataset, the market and storage refuse, with a message."""
RUNTIME_ERRORS: tuple[type[Exception], ...] = (*SERVICE_ERRORS, OSError)
"""What keeps a tournament's market from loading: it is served without a runtime."""


def listen(host: str, port: int) -> socket.socket:
    """A TCP socket listening on (host, port); port 0 lets the system pick a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family)


def loopback(host: str) -> bool:
    """True if only this machine can reach `host` (``localhost`` or a loopback address)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a name, or the wildcard "": it may be reached from elsewhere


def check_secret_for(host: str, settings: Settings) -> None:
    """Refuse to serve beyond this machine with the placeholder or a short secret key."""
    if not loopback(host) and weak_secret(secret_key_of(settings)):
        raise ValueError(
            f"serving on {host or 'every address'} needs CROWDQUANT_SECRET_KEY of at least"
            f" {MIN_SECRET_LENGTH} random characters (or unset it to use the generated key)"
        )


def participant_url(host: str, port: int) -> str:
    """The address participants give numerapi; a wildcard host becomes the loopback one."""
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def url_line(url: str) -> str:
    """The one line a participant adds to a numerapi script."""
    return f'numerapi.base_api.API_TOURNAMENT_URL = "{url}"'


@dataclass
class Server:
    """The HTTP app, the scheduler and uvicorn on a listening socket, ready to run together."""

    app: FastAPI
    scheduler: Scheduler
    diagnostics: DiagnosticsWorker
    validator: Validator
    server: uvicorn.Server
    engine: Engine
    listener: socket.socket
    tick_seconds: float
    stop: threading.Event

    @property
    def url(self) -> str:
        """Where participants reach the server (the real port, also when 0 was asked for)."""
        return participant_url(self.server.config.host, self.listener.getsockname()[1])

    def run(self, work: Callable[[threading.Event], None] | None = None) -> None:
        """Serve until uvicorn stops (Ctrl-C, or `should_exit`), with `work` (by default the
        scheduler ticking every `tick_seconds`) and the diagnostics worker (which runs the
        heavy scoring off the web server's threads) beside it; then stop them.

        `work` runs in a thread until the event it is given is set. Ctrl-C is a normal
        stop: uvicorn shuts down gracefully, then raises the signal again for the caller,
        and that KeyboardInterrupt ends here.
        """
        worker = threading.Thread(
            target=work or self._tick_forever, args=(self.stop,), name="crowdquant-worker"
        )
        worker.start()
        self.diagnostics.start()
        try:
            self.server.run(sockets=[self.listener])
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(worker)

    @contextmanager
    def serving(self) -> Iterator[str]:
        """Serve in a background thread for the block (the caller drives the scheduler);
        yields the URL."""
        web = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, name="crowdquant-web"
        )
        web.start()
        self.diagnostics.start()
        try:
            while not self.server.started:
                if not web.is_alive():
                    raise RuntimeError("the web server did not start")
                time.sleep(0.01)
            yield self.url
        finally:
            self.server.should_exit = True
            self._stop(web)

    def _tick_forever(self, stop: threading.Event) -> None:
        self.scheduler.run_forever(stop, self.tick_seconds)

    def _stop(self, thread: threading.Thread) -> None:
        self.stop.set()
        thread.join(timeout=30)
        self.diagnostics.join(timeout=30)
        self.validator.close()
        self.engine.dispose()
        self.listener.close()


def build_server(
    settings: Settings,
    *,
    warn: Callable[[str], None],
    host: str = "127.0.0.1",
    port: int = 8000,
    tick_seconds: float = 60.0,
    clock: Clock | None = None,
    replay_weeks: Mapping[int, int] | None = None,
    log_level: str = "info",
) -> Server:
    """Everything `crowdquant serve` runs, on the migrated database and a listening socket;
    nothing started yet. `replay_weeks` maps a tournament to how many weeks behind the
    calendar its recorded market is replayed (see `tournament_runtime`); `warn` is told
    which tournaments go without new rounds or scores, and why. A host beyond this machine
    needs a strong secret key (`check_secret_for`)."""
    check_secret_for(host, settings)
    infra = bootstrap(settings, clock or SystemClock(), genesis=True, validation_pool=True)
    runtimes = tournament_runtimes(infra, warn, replay_weeks or {})
    app = create_app(
        settings,
        clock=infra.clock,
        sessions=infra.sessions,
        storage=infra.storage,
        ledger=infra.ledger,
        runtimes=runtimes,
        validator=infra.validator,
    )
    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, log_config=log_config(), lifespan="off"
    )
    stop = threading.Event()
    try:
        listener = listen(host, port)
    except OSError:
        infra.close()
        raise
    return Server(
        app=app,
        scheduler=Scheduler(
            infra.sessions,
            infra.clock,
            runtimes,
            storage=infra.storage,
            ledger=infra.ledger,
            retention=Retention(
                keep_newest=settings.keep_uploads_per_model,
                per_tick=settings.retention_files_per_sweep,
            ),
        ),
        diagnostics=DiagnosticsWorker(
            infra.sessions,
            infra.storage,
            infra.clock,
            StoredValidationLoader(infra.storage),
            stop=stop,
            validator=infra.validator,
        ),
        validator=infra.validator,
        server=uvicorn.Server(config),
        engine=infra.engine,
        listener=listener,
        tick_seconds=tick_seconds,
        stop=stop,
    )


def tournament_runtimes(
    infra: Infrastructure, warn: Callable[[str], None], replay_weeks: Mapping[int, int]
) -> dict[int, TournamentRuntime]:
    """Every tournament's runtime; one whose market cannot be loaded gets none, and one whose
    recorded market ended more than `MARKET_LAG` ago is not scored (both with a warning)."""
    with transaction(infra.sessions) as session:
        tournaments = list_tournaments(session)
    runtimes: dict[int, TournamentRuntime] = {}
    today = infra.clock.now().date()
    for tournament in tournaments:
        shift = replay_weeks.get(tournament.number, 0)
        try:
            runtime = tournament_runtime(
                infra.settings, tournament, infra.storage, replay_weeks=shift
            )
        except RUNTIME_ERRORS as exc:
            message = getattr(exc, "message", None) or exc
            warn(f"[yellow]tournament {tournament.number} gets no new rounds:[/] {message}")
            continue
        ends = runtime.market_ends
        if ends is not None and ends < today - timedelta(weeks=shift) - MARKET_LAG:
            warn(
                f"[yellow]tournament {tournament.number}: its recorded market ends on {ends};"
                " its rounds resolve unscored[/]"
            )
            runtime = replace(runtime, targets=None, market=None)
        runtimes[tournament.number] = runtime
    return runtimes
