"""Project-wide fixtures: databases on both backends.

`postgres_server` starts one throwaway PostgreSQL server per test session (per xdist worker),
only when a test asks for it. `database_url` gives each test a fresh, empty database on
SQLite and on PostgreSQL (the test runs once per backend); `engine` and `sessions` give the
same database migrated to head.

PostgreSQL comes from the first of: `CROWDQUANT_TEST_POSTGRES_URL` (an existing server whose
user may CREATE DATABASE), the server binaries in `CROWDQUANT_TEST_PG_BIN`, the newest
`/usr/lib/postgresql/*/bin`, or `pg_ctl` on PATH. Without any of them the PostgreSQL half
of the suite fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db import migrate
from crowdquant.db.session import make_engine, session_factory

BACKENDS = ["sqlite", "postgresql"]


@dataclass(frozen=True)
class PostgresServer:
    """A server on which the tests may create and drop databases."""

    admin_url: str  # libpq URL of the maintenance database, e.g. postgresql://postgres@h:p/postgres

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.admin_url, autocommit=True)

    @contextmanager
    def database(self) -> Iterator[str]:
        """A new empty database for the block, dropped afterwards; yields its SQLAlchemy URL."""
        name = f"test_{uuid.uuid4().hex}"
        with self._admin() as admin:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        try:
            yield make_url(self.admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with self._admin() as admin:
                admin.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def _pg_bin() -> Path | None:
    if configured := os.environ.get("CROWDQUANT_TEST_PG_BIN"):
        return Path(configured)
    installed = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if installed:
        return Path(installed[-1]).parent
    on_path = shutil.which("pg_ctl")
    return Path(on_path).parent if on_path else None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def _throwaway_server(pg_bin: Path) -> Iterator[PostgresServer]:
    """initdb into a fresh directory, start on a free loopback port, always stop and delete.

    initdb and postgres refuse to run as root: as root, they run as the `postgres` user.
    """
    as_user: list[str] = []
    root = os.geteuid() == 0
    # As root, somewhere the postgres user can reach (TMPDIR may be private to root).
    base = Path(tempfile.mkdtemp(prefix="crowdquant-pg-", dir="/tmp" if root else None))
    if root:
        shutil.chown(base, user="postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, log = base / "data", base / "server.log"
    pg_ctl = [str(pg_bin / "pg_ctl"), "-D", str(data)]

    def run(*args: str) -> None:
        done = subprocess.run([*as_user, *args], cwd=base, capture_output=True, text=True)
        if done.returncode != 0:
            server_log = log.read_text() if log.exists() else ""
            raise RuntimeError(f"{Path(args[0]).name} failed: {done.stderr}\n{server_log}")

    try:
        run(
            str(pg_bin / "initdb"),
            *("-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8"),
            *("--no-locale", "--no-sync", "--no-instructions"),
        )
        for attempt in range(3):  # retry if another process takes the port before we bind it
            port = _free_port()
            options = (
                f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
                " -c synchronous_commit=off -c full_page_writes=off"
            )
            try:
                run(*pg_ctl, "-l", str(log), "-w", "-o", options, "start")
                break
            except RuntimeError:
                if attempt == 2:
                    raise
        yield PostgresServer(f"postgresql://postgres@127.0.0.1:{port}/postgres")
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                [*as_user, *pg_ctl, "-m", "immediate", "-w", "stop"], cwd=base, capture_output=True
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One PostgreSQL server for this test session (one per xdist worker that needs it)."""
    if external := os.environ.get("CROWDQUANT_TEST_POSTGRES_URL"):
        yield PostgresServer(external)
        return
    pg_bin = _pg_bin()
    if pg_bin is None:
        pytest.fail("no PostgreSQL server (install postgresql or set CROWDQUANT_TEST_PG_BIN)")
    with _throwaway_server(pg_bin) as server:
        yield server


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database for one test, on each backend in turn."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    server: PostgresServer = request.getfixturevalue("postgres_server")
    with server.database() as url:
        yield url


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on a fresh database migrated to head."""
    migrate.upgrade(database_url)
    engine = make_engine(database_url)
    try:
        yield engine
    finally:
        engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    """The session factory the application would build on `engine`."""
    return session_factory(engine)


@pytest.fixture
def raised_recursion_limit() -> Iterator[None]:
    """Python's recursion limit as web3's import leaves it (py_ecc raises it to 100,000), so a
    parser's recursion would overflow the C stack before any RecursionError."""
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(100_000)
    try:
        yield
    finally:
        sys.setrecursionlimit(before)
