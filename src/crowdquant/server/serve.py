"""`crowdquant serve`'s server: the HTTP app, the round scheduler and the diagnostics worker
on one migrated database, uvicorn on a listening socket.

Several processes may serve one database (`build_server(shared=True)`): `serve --workers N`
on one machine (`Workers`: N processes, each a whole `Server`, on one listening socket), or
`serve` on several machines behind a proxy. Each answers requests and runs diagnostics;
only the holder of the "scheduler" lease (`db.lease`) ticks, and the abuse limits are
counted in the database (`http.throttle.SharedCounts`), so that they hold across processes.
"""

from __future__ import annotations

import ipaddress
import multiprocessing
import multiprocessing.connection
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from types import FrameType

import uvicorn
from fastapi import FastAPI
from rich.console import Console
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock, SystemClock
from crowdquant.compute.cluster import ClusterUnavailable, connect
from crowdquant.compute.runtime import runtimes_from_settings
from crowdquant.compute.sandbox import SandboxLimits
from crowdquant.data.feed import FeedError
from crowdquant.data.keys import KeyfileError
from crowdquant.data.panel import PanelError
from crowdquant.data.release import ReleaseError
from crowdquant.db.lease import Lease
from crowdquant.db.session import transaction
from crowdquant.http.throttle import SharedCounts, Throttle
from crowdquant.ledger import LedgerError
from crowdquant.server.access_log import log_config
from crowdquant.server.app import create_app
from crowdquant.server.bootstrap import Infrastructure, bootstrap
from crowdquant.settings import MIN_SECRET_LENGTH, Settings, secret_key_of, weak_secret
from crowdquant.storage import StorageError
from crowdquant.tournament.compute_jobs import ComputeWorker
from crowdquant.tournament.diagnostics import DiagnosticsWorker, StoredValidationLoader
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.retention import Retention
from crowdquant.tournament.runtime import TournamentRuntime, tournament_runtime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.tournaments import list_tournaments
from crowdquant.tournament.validator import Validator
from crowdquant.tournament.webhook_worker import WebhookPolicy, WebhookWorker
from crowdquant.tournament.webhooks import WebhookTargets

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
    ClusterUnavailable,
)
"""How the services, the ledger, a dataset, the market, storage and a Dask cluster refuse,
with a message."""
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


class Terminated(Exception):  # noqa: N818  (the signal's own name)
    """SIGTERM: stop as for Ctrl-C."""


def _terminated(_signal: int, _frame: FrameType | None) -> None:
    raise Terminated


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
    lease: Lease | None = None
    """Shared by several processes: the scheduler ticks only while this process holds it."""
    compute: ComputeWorker | None = None
    """Runs uploaded models' jobs in a thread beside the scheduler (`compute_jobs`)."""
    webhooks: WebhookWorker | None = None
    """Sends webhook deliveries in a thread beside the scheduler (`webhook_worker`)."""

    @property
    def url(self) -> str:
        """Where participants reach the server (the real port, also when 0 was asked for)."""
        return participant_url(self.server.config.host, self.listener.getsockname()[1])

    def run(self, work: Callable[[threading.Event], None] | None = None) -> None:
        """Serve until uvicorn stops (Ctrl-C, or `should_exit`), with `work` (by default the
        scheduler ticking every `tick_seconds`) and the diagnostics worker (which runs the
        heavy scoring off the web server's threads) beside it; then stop them.

        `work` runs in a thread until the event it is given is set. Ctrl-C and SIGTERM are
        normal stops: uvicorn shuts down gracefully, then raises the signal again for the
        caller, and that ends here (the scheduler's lease is given up on the way).
        """
        worker = threading.Thread(
            target=work or self._tick_forever, args=(self.stop,), name="crowdquant-worker"
        )
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _terminated) if main else None
        worker.start()
        self.diagnostics.start()
        self._start_compute()
        try:
            self.server.run(sockets=[self.listener])
        except (KeyboardInterrupt, Terminated):
            pass
        finally:
            self._stop(worker)
            if main:
                signal.signal(signal.SIGTERM, previous)

    @contextmanager
    def serving(self, *, diagnostics_thread: bool = True) -> Iterator[str]:
        """Serve in a background thread for the block (the caller drives the scheduler);
        yields the URL. Without `diagnostics_thread` the caller also runs the diagnostics
        worker's polls (`diagnostics.poll`), at moments of its choosing."""
        web = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.listener]}, name="crowdquant-web"
        )
        web.start()
        if diagnostics_thread:
            self.diagnostics.start()
        self._start_compute()
        try:
            while not self.server.started:
                if not web.is_alive():
                    raise RuntimeError("the web server did not start")
                time.sleep(0.01)
            yield self.url
        finally:
            self.server.should_exit = True
            self._stop(web)

    @contextmanager
    def in_process(self, *, diagnostics_thread: bool = True) -> Iterator[FastAPI]:
        """The app with the diagnostics worker beside it for the block, on no socket: the
        caller reaches it in this process and drives the scheduler (and, without
        `diagnostics_thread`, the diagnostics worker's polls)."""
        if diagnostics_thread:
            self.diagnostics.start()
        try:
            yield self.app
        finally:
            self._stop(None)

    def _start_compute(self) -> None:
        """The compute worker's and the webhook worker's threads: daemons, as a job may run
        for minutes (its sandbox dies with this process) and a delivery waits on the network
        (a claimed attempt is sent again once its lease runs out)."""
        if self.compute is not None:
            threading.Thread(
                target=self.compute.run_forever,
                args=(self.stop,),
                name="crowdquant-compute",
                daemon=True,
            ).start()
        if self.webhooks is not None:
            threading.Thread(
                target=self.webhooks.run_forever,
                args=(self.stop,),
                name="crowdquant-webhooks",
                daemon=True,
            ).start()

    def _tick_forever(self, stop: threading.Event) -> None:
        self.scheduler.run_forever(stop, self.tick_seconds, self.lease)

    def _stop(self, thread: threading.Thread | None) -> None:
        self.stop.set()
        if thread is not None:
            thread.join(timeout=30)
        if self.diagnostics.is_alive():
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
    shared: bool = False,
    listener: socket.socket | None = None,
    validation_pool: bool = True,
) -> Server:
    """Everything `crowdquant serve` runs, on the migrated database and a listening socket
    (`listener`, or a new one on `host` and `port`); nothing started yet. `replay_weeks`
    maps a tournament to how many weeks behind the calendar its recorded market is replayed
    (see `tournament_runtime`); `warn` is told which tournaments go without new rounds or
    scores, and why. A host beyond this machine needs a strong secret key
    (`check_secret_for`). `shared`: other processes may serve the same database, so the
    scheduler runs under the lease and the abuse limits are counted in the database.
    Without `validation_pool`, uploads are validated in this process (`IN_PROCESS`)."""
    check_secret_for(host, settings)
    infra = bootstrap(
        settings, clock or SystemClock(), genesis=True, validation_pool=validation_pool
    )
    runtimes = tournament_runtimes(infra, warn, replay_weeks or {})
    lease = None
    throttle = None
    if shared:
        ttl = timedelta(seconds=settings.scheduler_lease_seconds)
        lease = Lease(infra.sessions, "scheduler", ttl)
        throttle = Throttle.from_settings(
            settings, infra.clock, SharedCounts.for_database(settings.database)
        )
    app = create_app(
        settings,
        clock=infra.clock,
        sessions=infra.sessions,
        storage=infra.storage,
        ledger=infra.ledger,
        runtimes=runtimes,
        throttle=throttle,
        validator=infra.validator,
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        log_config=log_config(log_level),
        lifespan="off",
    )
    stop = threading.Event()
    try:
        listener = listener or listen(host, port)
    except OSError:
        infra.close()
        raise
    return Server(
        app=app,
        scheduler=_scheduler(
            infra, runtimes, infra.sessions if lease is None else lease.fenced(infra.sessions)
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
        lease=lease,
        compute=_compute_worker(settings, infra) if settings.compute_local_worker else None,
        webhooks=webhook_worker(settings, infra) if settings.webhook_local_worker else None,
    )


def _scheduler(
    infra: Infrastructure,
    runtimes: Mapping[int, TournamentRuntime],
    sessions: sessionmaker[Session] | None = None,
) -> Scheduler:
    settings = infra.settings
    return Scheduler(
        infra.sessions if sessions is None else sessions,
        infra.clock,
        runtimes,
        storage=infra.storage,
        ledger=infra.ledger,
        retention=Retention(
            keep_newest=settings.keep_uploads_per_model,
            per_tick=settings.retention_files_per_sweep,
            scan_per_tick=settings.retention_scan_per_sweep,
        ),
    )


@contextmanager
def scheduler_apart(settings: Settings, clock: Clock) -> Iterator[Scheduler]:
    """A scheduler on `settings`' database and files, on infrastructure of its own (closed
    at the end of the block), as another process beside a server builds it; its tournaments'
    runtimes are loaded quietly (the server warns)."""
    infra = bootstrap(settings, clock)
    try:
        yield _scheduler(infra, tournament_runtimes(infra, _ignore, {}))
    finally:
        infra.close()


def _compute_worker(settings: Settings, infra: Infrastructure) -> ComputeWorker:
    return ComputeWorker(
        infra.sessions,
        infra.clock,
        infra.storage,
        limits=SandboxLimits.from_settings(settings),
        runtimes=runtimes_from_settings(settings),
        validator=infra.validator,
        cluster=connect(address) if (address := settings.compute_dask_scheduler) else None,
    )


def webhook_worker(settings: Settings, infra: Infrastructure) -> WebhookWorker:
    """The webhook worker of `settings`, on `infra`'s database and clock."""
    return WebhookWorker(
        infra.sessions,
        infra.clock,
        WebhookTargets.from_settings(settings),
        policy=WebhookPolicy.from_settings(settings),
    )


WORKER_STOP_SECONDS = 30.0
"""How long a worker process has to finish its requests and stop before it is killed."""
FAILED_START_SECONDS = 5.0
"""A worker that exits sooner than this after starting is not started again."""


class WorkerFailed(RuntimeError):  # noqa: N818  (as `serve` says it)
    """A worker process ended as it started (its error is on standard error)."""


@dataclass
class Workers:
    """`count` worker processes, each a whole shared `Server` (see `build_server`), on one
    listening socket: the system hands each connection to one of them. A worker that stops
    is started again; SIGINT or SIGTERM stops them all."""

    count: int
    listener: socket.socket
    host: str
    tick_seconds: float
    log_level: str = "info"

    @property
    def url(self) -> str:
        return participant_url(self.host, self.listener.getsockname()[1])

    def run(self) -> None:
        """Run the workers until a signal, then stop them; `WorkerFailed` (after stopping the
        others) if one fails as it starts."""
        stopping = threading.Event()

        def stop(_signal: int, _frame: FrameType | None) -> None:
            stopping.set()

        previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
        # forked from this process, which has imported everything and holds no connection
        context = multiprocessing.get_context("fork")
        started: dict[int, float] = {}

        def start(index: int) -> multiprocessing.process.BaseProcess:
            process = context.Process(
                target=_serve_worker,
                args=(index, self.host, self.listener, self.tick_seconds, self.log_level),
                name=f"crowdquant-worker-{index}",
            )
            process.start()
            started[index] = time.monotonic()
            return process

        processes = [start(index) for index in range(self.count)]
        failed: str | None = None
        try:
            while not stopping.is_set():
                multiprocessing.connection.wait([p.sentinel for p in processes], timeout=0.5)
                for index, process in enumerate(processes):
                    if process.is_alive() or stopping.is_set():
                        continue
                    if time.monotonic() - started[index] < FAILED_START_SECONDS:
                        failed = f"worker {index} failed to start (exit code {process.exitcode})"
                        stopping.set()
                    else:
                        print(
                            f"worker {index} stopped (exit code {process.exitcode}); starting"
                            " another",
                            file=sys.stderr,
                        )
                        processes[index] = start(index)
        finally:
            for process in processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM: uvicorn finishes its requests first
            deadline = time.monotonic() + WORKER_STOP_SECONDS
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
                if process.is_alive():
                    process.kill()
                    process.join()
            self.listener.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if failed is not None:
            raise WorkerFailed(failed)


def prepare_workers(
    settings: Settings,
    *,
    count: int,
    host: str = "127.0.0.1",
    port: int = 8000,
    tick_seconds: float = 60.0,
    log_level: str = "info",
) -> Workers:
    """What `serve --workers N` runs: the secret key checked (and made, once), the database
    migrated once, and the listening socket; the workers start in `Workers.run`."""
    check_secret_for(host, settings)
    secret_key_of(settings)  # the random key is made here, not raced for by the workers
    bootstrap(settings, SystemClock(), genesis=True).close()
    return Workers(
        count=count,
        listener=listen(host, port),
        host=host,
        tick_seconds=tick_seconds,
        log_level=log_level,
    )


def _serve_worker(
    index: int, host: str, listener: socket.socket, tick_seconds: float, log_level: str
) -> None:
    """One worker process: a shared server on the inherited socket (the first one warns).
    It stops as `serve` does on SIGINT and SIGTERM, and when its parent has died."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    parent = os.getppid()
    threading.Thread(target=_stop_when_orphaned, args=(parent,), daemon=True).start()
    console = Console(stderr=True)
    server = build_server(
        Settings(),
        warn=console.print if index == 0 else _ignore,
        host=host,
        tick_seconds=tick_seconds,
        log_level=log_level,
        shared=True,
        listener=listener,
    )
    server.run()


def _stop_when_orphaned(parent: int) -> None:
    """SIGTERM to this process once `parent` is gone (killed without stopping its workers)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _ignore(_message: str) -> None:
    pass


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
