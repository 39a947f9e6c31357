"""A server killed in the middle of a step and started again ends exactly where a run that
was never killed ends: the same rows (ledger, balances, stakes, scores, payouts, rounds,
meta models, targets, fund books) and the same stored files, on SQLite and PostgreSQL.

One small tournament (three stakers, one round a week on a three-day horizon) is prepared
once per database and copied for each run. Every run serves on the stepped clock (a tick
every six simulated hours, from round 1's window to round 2's), so every run has the same
ticks at the same times, and a killed run is started again at the tick it did not finish
(as a restarted server would find that tick's work still due). Where it dies is named by
``CROWDQUANT_CRASH_AT`` (`crowdquant.faults`): right after a file is written and before
the row naming it commits, or with the rows flushed and not committed.

- The reference: the run never killed (in this process, the same ticks `serve` runs).
- Every crash point in turn, on both databases: the death played in-process (an exception
  no handler catches; what was committed and written stays), a new server each time.
- The real `crowdquant serve`, killed with SIGKILL during a scoring pass, a resolution and
  a round's opening, started again each time on the same home and database, then run to
  the end.

Rows are compared without their generated ids (each id is replaced by the content of the
row it names, so a row written by a retry compares equal to the reference's) and with
their times, which come from the stepped clock. Every file is compared, key and sha256,
with no exclusion: each file a row names is written again, byte for byte, under the same
key, and a crash between a write and its row leaves no other file.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psycopg
import pytest
from argon2 import PasswordHasher
from psycopg import sql
from sqlalchemy import select
from sqlalchemy.engine import make_url

from crowdquant import faults
from crowdquant.clock import ManualClock
from crowdquant.data.build import build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig, TargetConfig
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig
from crowdquant.db.base import Base
from crowdquant.db.models import Cadence, Model, Round, RoundStatus, Rules, StakeChangeKind
from crowdquant.db.session import make_engine, transaction
from crowdquant.faults import CRASH_AT, CRASH_STEPS
from crowdquant.server.bootstrap import bootstrap
from crowdquant.server.serve import build_server
from crowdquant.server.stepped import TICK, stepped_ticks
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.datasets import publish_dataset_version
from crowdquant.tournament.models import create_model
from crowdquant.tournament.runtime import tournament_runtime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.staking import change_stake, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..conftest import PostgresServer

EXECUTABLE = str(Path(sys.executable).with_name("crowdquant"))
KEYS = OperatorKeys(bytes(range(32)))
MARKET = SyntheticConfig(n_stocks=40, n_weeks=70, seed=1)
DATASET = DatasetConfig(
    targets=TargetConfig(lag=1, horizon=3), example_model=ExampleModelConfig(max_iter=5)
)
CALENDAR = {
    "open_days": ["tue"],
    "target_lag_days": 1,
    "target_horizon_days": 3,
    "score_delay_days": 0,
    "scoring_days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
}
OPENED = datetime(2001, 1, 9, 12, tzinfo=UTC)  # Tuesday: round 1's window is 12:00-13:00
START = OPENED + timedelta(minutes=5)
UNTIL = START + timedelta(weeks=1)  # round 2 opens at this last tick
STEP_HOURS = 6
STAKERS = {"alice": 30, "bob": 20, "carol": 10}  # NMR staked on each one's model
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SERVE_SECONDS = 120
CRASHES = (
    "close:before-commit",
    "scoring:after-meta-model",
    "scoring:before-commit",
    "fund:before-commit",
    "scoring:after-targets",
    "resolution:after-status",
    "resolution:before-commit",
    "open:after-files",
    "open:before-commit",
)
"""Each crash point, in the order the run reaches them."""
KILLS = {
    "sqlite": ("scoring:after-targets", "resolution:before-commit", "open:after-files"),
    "postgresql": ("scoring:after-meta-model", "resolution:before-commit", "open:before-commit"),
}
"""Where the real process is killed: a scoring pass, a resolution and a round's opening."""
LEFT_UNNAMED = {
    "scoring:after-targets": ["operator/rounds/{round}/targets_day_001.parquet"],
    "scoring:after-meta-model": ["operator/rounds/{round}/meta_model.parquet"],
    "resolution:before-commit": [],
    "open:after-files": ["v1/live_2.parquet", "v1/live_benchmark_models_2.parquet"],
    "open:before-commit": ["v1/live_2.parquet", "v1/live_benchmark_models_2.parquet"],
}
"""The files a kill leaves that no row names: written, their rows never committed."""
LEFT_ROUNDS = {
    "scoring:after-targets": [(1, RoundStatus.SCORING)],
    "scoring:after-meta-model": [(1, RoundStatus.SCORING)],
    "resolution:before-commit": [(1, RoundStatus.SCORING)],
    "open:after-files": [(1, RoundStatus.RESOLVED)],
    "open:before-commit": [(1, RoundStatus.RESOLVED)],
}
"""Round 1 (and no other) as each kill leaves it."""


@dataclass(frozen=True)
class Run:
    """A home (with the SQLite database in it) or a home and a PostgreSQL database."""

    home: Path
    database: str | None

    def env(self, crash_at: str | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CROWDQUANT_")}
        env["CROWDQUANT_HOME"] = str(self.home)
        if self.database is not None:
            env["CROWDQUANT_DATABASE_URL"] = self.database
        if crash_at is not None:
            env[CRASH_AT] = crash_at
        return env


@dataclass
class Prepared:
    """The prepared tournament, copied for each run."""

    backend: str
    original: Run
    server: PostgresServer | None
    kept_ids: frozenset[tuple[str, str]]
    """Every (table, id) in the database as prepared: the same in every copy."""
    copies: list[str] = field(default_factory=list)

    def copy(self, home: Path, name: str) -> Run:
        shutil.copytree(self.original.home, home)
        if self.server is None or self.original.database is None:
            return Run(home, None)
        template = make_url(self.original.database)
        copied = f"{template.database}_{name}"
        with psycopg.connect(self.server.admin_url, autocommit=True) as admin:
            admin.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                    sql.Identifier(copied), sql.Identifier(str(template.database))
                )
            )
        self.copies.append(copied)
        return Run(home, template.set(database=copied).render_as_string(hide_password=False))

    def drop_copies(self) -> None:
        if self.server is None:
            return
        with psycopg.connect(self.server.admin_url, autocommit=True) as admin:
            for name in self.copies:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


# --- preparing the tournament once per database ----------------------------------------------


def prepare(home: Path, database: str | None) -> None:
    """Round 1 open, three models staked and submitted; round 2 opens a week later."""
    settings = Settings(home=home, database_url=database)
    KEYS.save(settings.keyfile)
    version, _ = build_version(
        SyntheticSource(market=MARKET),
        DATASET,
        KEYS,
        settings.datasets_dir,
        settings.operator_dir,
        version="v1",
    )
    clock = ManualClock(OPENED)
    infra = bootstrap(settings, clock, genesis=True)
    try:
        with transaction(infra.sessions) as session:
            opened = DatasetVersion.open("v1", settings.datasets_dir, settings.operator_dir)
            create_tournament(
                session,
                clock,
                8,
                "classic",
                Rules.CLASSIC,
                Cadence.DAILY,
                opened,
                {"calendar": CALENDAR},
            )
            publish_dataset_version(session, clock, infra.storage, version)
            for name, nmr in STAKERS.items():
                account = sign_up(
                    session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP
                )
                model = create_model(session, clock, account, 8, f"{name}_model")
                grant_nmr(session, infra.ledger, account, 100 * 10**18, f"test:{name}")
                change_stake(
                    session, infra.ledger, clock, model, StakeChangeKind.INCREASE, nmr * 10**18
                )
        with transaction(infra.sessions) as session:
            tournament = get_tournament(session, 8)
            runtime = tournament_runtime(settings, tournament, infra.storage)
        Scheduler(
            infra.sessions, clock, {8: runtime}, storage=infra.storage, ledger=infra.ledger
        ).tick()
        rng = np.random.default_rng(5)
        with transaction(infra.sessions) as session:
            round_ = session.scalars(select(Round)).one()
            ids = live_ids_of_round(infra.storage, round_)
            for model in session.scalars(select(Model).order_by(Model.name)):
                values = pd.Series(rng.uniform(0, 1, len(ids)), index=ids).round(6)
                csv = (
                    values.rename("prediction").rename_axis("id").reset_index().to_csv(index=False)
                )
                submit_predictions(
                    session,
                    clock,
                    infra.storage,
                    model.account,
                    model.id,
                    round_,
                    "predictions.csv",
                    csv.encode(),
                    live_ids=ids,
                )
    finally:
        infra.close()


def all_ids(database: str) -> frozenset[tuple[str, str]]:
    engine = make_engine(database)
    try:
        with engine.connect() as connection:
            return frozenset(
                (table.name, str(value))
                for table in Base.metadata.sorted_tables
                if "id" in table.c
                for value in connection.scalars(select(table.c.id))
            )
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def prepared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prepared]:
    home = tmp_path_factory.mktemp("prepared") / "home"
    if request.param == "sqlite":
        prepare(home, None)
        yield Prepared("sqlite", Run(home, None), None, all_ids(Settings(home=home).database))
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        prepare(home, url)
        prepared = Prepared("postgresql", Run(home, url), server, all_ids(url))
        try:
            yield prepared
        finally:
            prepared.drop_copies()


# --- serving ---------------------------------------------------------------------------------


def serve(run: Run, start: datetime, crash_at: str | None = None) -> tuple[int, str]:
    """`crowdquant serve` on the stepped clock from `start` to `UNTIL`; its exit code and
    output."""
    command = [
        EXECUTABLE,
        "serve",
        *("--port", "0", "--tick-seconds", "0"),
        *("--clock-start", start.isoformat(), "--clock-step-hours", str(STEP_HOURS)),
        *("--clock-until", UNTIL.isoformat()),
    ]
    log = run.home.parent / f"{run.home.name}.log"
    with log.open("ab") as sink:
        done = subprocess.run(
            command,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=run.env(crash_at),
            timeout=SERVE_SECONDS,
            check=False,
        )
    return done.returncode, log.read_text(errors="replace")


def last_tick(output: str) -> datetime:
    ticks = re.findall(rf"^{TICK}(\S+)$", output, re.MULTILINE)
    assert ticks, output
    return datetime.fromisoformat(ticks[-1])


# --- what a run leaves -------------------------------------------------------------------------

_UUID = re.compile(r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}")


PROCESS_TABLES = frozenset({"leases", "rate_limit_hits", "sign_in_failures"})
"""Which process holds the scheduler and the abuse limits' counts: the processes' own
bookkeeping, not the tournament's state (the run never killed holds no lease)."""


class Canon:
    """A run's rows and files with every generated id replaced by what it names."""

    def __init__(self, run: Run, kept_ids: frozenset[tuple[str, str]]) -> None:
        self.kept = kept_ids
        database = run.database or Settings(home=run.home).database
        engine = make_engine(database)
        try:
            with engine.connect() as connection:
                self.rows = {
                    table.name: [dict(row._mapping) for row in connection.execute(select(table))]
                    for table in Base.metadata.sorted_tables
                }
        finally:
            engine.dispose()
        self.tables = {table.name: table for table in Base.metadata.sorted_tables}
        self.by_id: dict[tuple[str, str], dict[str, Any]] = {
            (name, str(row["id"])): row
            for name, rows in self.rows.items()
            for row in rows
            if "id" in row
        }
        self.uuid_table = {
            str(row["id"]): name
            for name, rows in self.rows.items()
            for row in rows
            if isinstance(row.get("id"), uuid.UUID)
        }
        self._labels: dict[tuple[str, str], str] = {}
        self.files_root = Settings(home=run.home).storage_dir

    def label(self, table: str, value: object) -> str:
        key = (table, str(value))
        if key in self.kept:
            return str(value)
        if key not in self._labels:
            row = self.by_id.get(key)
            if row is None:
                return f"?{table}:{value}"
            self._labels[key] = "…"  # a circle shows, rather than recursing forever
            self._labels[key] = f"{table}<{self.row(table, row)}>"
        return self._labels[key]

    def uuid_text(self, text: str) -> str:
        def named(found: re.Match[str]) -> str:
            value = str(uuid.UUID(found.group(0)))
            table = self.uuid_table.get(value)
            return found.group(0) if table is None else self.label(table, value)

        return _UUID.sub(named, text)

    def value(self, value: object) -> object:
        if isinstance(value, uuid.UUID):
            table = self.uuid_table.get(str(value))
            return str(value) if table is None else self.label(table, value)
        if isinstance(value, str):
            return self.uuid_text(value)
        if isinstance(value, dict):
            return {self.uuid_text(str(k)): self.value(v) for k, v in sorted(value.items())}
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        if isinstance(value, datetime):
            return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
        if isinstance(value, date | Decimal):
            return str(value)
        return value

    def row(self, table: str, row: dict[str, Any]) -> str:
        columns = self.tables[table].c
        found: dict[str, object] = {}
        for name, value in row.items():
            if name == "id":
                continue
            targets = [fk.column.table.name for fk in columns[name].foreign_keys]
            if targets and value is not None:
                found[name] = self.label(targets[0], value)
            else:
                found[name] = self.value(value)
        return json.dumps(found, sort_keys=True, default=str)

    def tables_rows(self) -> dict[str, list[str]]:
        return {
            name: sorted(self.row(name, row) for row in rows)
            for name, rows in self.rows.items()
            if name not in PROCESS_TABLES
        }

    def files(self) -> dict[str, str]:
        found = {}
        for path in sorted(self.files_root.rglob("*")):
            if path.is_file():
                key = path.relative_to(self.files_root).as_posix()
                found[self.uuid_text(key)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return found

    def unnamed_files(self) -> list[str]:
        """Stored keys no row names, but those no row names by design: a round's prediction
        cache (`scoring.inputs`) and the version's own live files (features, benchmark
        models' predictions), which round 1's replaced in the version's file list when it
        opened."""
        named = {
            value
            for rows in self.rows.values()
            for row in rows
            for value in row.values()
            if isinstance(value, str)
        }
        return sorted(
            key
            for path in self.files_root.rglob("*")
            if path.is_file()
            and (key := path.relative_to(self.files_root).as_posix()) not in named
            and not key.endswith("/predictions.parquet")
            and key not in ("v1/live.parquet", "v1/live_benchmark_models.parquet")
        )

    def round_statuses(self) -> list[tuple[int, RoundStatus]]:
        return sorted((row["number"], row["status"]) for row in self.rows["rounds"])


def differences(reference: dict[str, Any], other: dict[str, Any]) -> list[str]:
    found = []
    for name in sorted(reference.keys() | other.keys()):
        ours, theirs = reference.get(name), other.get(name)
        if ours == theirs:
            continue
        if isinstance(ours, list) and isinstance(theirs, list):
            only_ref = sorted(set(ours) - set(theirs))[:3]
            only_run = sorted(set(theirs) - set(ours))[:3]
            found.append(f"{name}: reference only {only_ref}; killed run only {only_run}")
        else:
            found.append(f"{name}: reference {ours!r}, killed run {theirs!r}")
    return found


# --- the tests ----------------------------------------------------------------------------------


class Killed(BaseException):
    """A process's death, in-process: no handler of `Exception` catches it."""


def serve_in_process(run: Run, start: datetime) -> datetime | None:
    """What `serve` runs on the stepped clock, in this process and without the web server,
    from `start` to `UNTIL`; the tick it was killed in (None: it ran to the end)."""
    settings = Settings(home=run.home, database_url=run.database)
    clock = ManualClock(start)
    server = build_server(settings, warn=lambda _: None, port=0, tick_seconds=0, clock=clock)
    ticks: list[str] = []
    try:
        stepped_ticks(server, clock, timedelta(hours=STEP_HOURS), until=UNTIL, say=ticks.append)(
            threading.Event()
        )
    except Killed:
        return datetime.fromisoformat(ticks[-1].removeprefix(TICK))
    finally:
        server.validator.close()
        server.engine.dispose()
        server.listener.close()
    return None


@pytest.fixture(scope="module")
def reference(prepared: Prepared, tmp_path_factory: pytest.TempPathFactory) -> Canon:
    """The run never killed, as it ends."""
    run = prepared.copy(tmp_path_factory.mktemp("reference") / "home", "reference")
    assert serve_in_process(run, START) is None
    ended = Canon(run, prepared.kept_ids)
    assert sorted((r["number"], r["status"]) for r in ended.rows["rounds"]) == [
        (1, RoundStatus.RESOLVED),
        (2, RoundStatus.OPEN),
    ]
    assert len(ended.rows["round_payouts"]) == len(STAKERS) and ended.rows["round_scores"]
    assert ended.rows["meta_models"] and ended.rows["fund_books"]
    return ended


def assert_same(reference: Canon, run: Run, prepared: Prepared) -> None:
    ended = Canon(run, prepared.kept_ids)
    assert differences(reference.tables_rows(), ended.tables_rows()) == []
    assert differences(reference.files(), ended.files()) == []
    settings = Settings(home=run.home, database_url=run.database)
    infra = bootstrap(settings, ManualClock(UNTIL))
    try:
        with transaction(infra.sessions) as session:
            report = infra.ledger.verify(session)
    finally:
        infra.close()
    assert report.sound, report.problems


def test_the_crash_points_are_all_named_in_order() -> None:
    assert sorted(CRASHES) == sorted(CRASH_STEPS)


def test_a_scheduler_dying_at_every_crash_point_ends_as_one_never_killed(
    prepared: Prepared,
    reference: Canon,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each crash point in turn, the process's death played in-process: what was committed
    stays, what was written to storage stays, nothing else runs; a new server starts at the
    tick that died."""

    def die() -> None:
        raise Killed

    monkeypatch.setattr(faults, "die", die)
    run = prepared.copy(tmp_path / "home", "in_process")
    start: datetime | None = START
    for step in CRASHES:
        monkeypatch.setenv(CRASH_AT, step)
        assert start is not None
        start = serve_in_process(run, start)
        assert start is not None, f"the run never reached {step}"
    monkeypatch.delenv(CRASH_AT)
    assert start is not None
    assert serve_in_process(run, start) is None
    assert_same(reference, run, prepared)


def test_serve_killed_while_scoring_resolving_and_opening_ends_as_one_never_killed(
    prepared: Prepared, reference: Canon, tmp_path: Path
) -> None:
    """The real `crowdquant serve`, killed with SIGKILL in a scoring pass, a resolution
    and a round's opening, each time started again on the same home and database."""
    run = prepared.copy(tmp_path / "home", "killed")
    start = START
    for step in KILLS[prepared.backend]:
        code, output = serve(run, start, crash_at=step)
        assert code == -signal.SIGKILL, f"{step}: exited {code} instead of being killed\n{output}"
        left = Canon(run, prepared.kept_ids)
        round_1 = next(row["id"].hex for row in left.rows["rounds"] if row["number"] == 1)
        unnamed = [key.format(round=round_1) for key in LEFT_UNNAMED[step]]
        assert left.unnamed_files() == unnamed  # the window was hit: files without rows
        assert left.round_statuses() == LEFT_ROUNDS[step]
        start = last_tick(output)
    code, output = serve(run, start)
    assert code == 0, output
    assert "Traceback" not in output, output
    assert_same(reference, run, prepared)
