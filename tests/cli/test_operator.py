"""The operator's commands end to end, as an operator types them (SQLite in CROWDQUANT_HOME)."""

from __future__ import annotations

import re
import threading
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numerapi
import numerapi.base_api
import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.clock import SystemClock
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.db import migrate
from crowdquant.db.models import ApiScope
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.server.serve import build_server
from crowdquant.settings import Settings
from crowdquant.tournament.accounts import KeyRevoked, authenticate_api_key
from crowdquant.tournament.rounds import FeedPublisher

runner = CliRunner()
PASSWORD = "correct horse battery"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


def _ok(*args: str, input: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input)
    assert result.exit_code == 0, result.output
    return result.output


def _authenticate(home: Path, public_id: str, secret: str) -> str:
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            account = authenticate_api_key(
                session, SystemClock(), public_id, secret, ApiScope.UPLOAD
            )
            return account.username
    finally:
        engine.dispose()


def test_db_upgrade_creates_home_and_migrates(home: Path) -> None:
    output = _ok("db", "upgrade")
    assert migrate.head() in output
    assert migrate.current(Settings().database) == migrate.head()
    assert (home / "crowdquant.db").is_file()


def test_account_and_key_lifecycle(home: Path) -> None:
    output = _ok(
        "account", "create", "alice", "--email", "alice@example.org", "--password", PASSWORD
    )
    assert "created account alice" in output

    output = _ok("key", "create", "alice", "--name", "laptop", "--scopes", "read,upload")
    public_id = re.search(r"public id:\s+([0-9A-F]{32})", output)
    secret = re.search(r"secret key:\s+([0-9A-F]{64})", output)
    assert public_id and secret, output
    assert output.count(secret[1]) == 1 and "only this once" in output
    assert _authenticate(home, public_id[1], secret[1]) == "alice"

    assert "revoked" in _ok("key", "revoke", "alice", public_id[1])
    with pytest.raises(KeyRevoked):
        _authenticate(home, public_id[1], secret[1])


def test_password_is_prompted_with_confirmation(home: Path) -> None:
    output = _ok(
        "account", "create", "bob", "--email", "bob@example.org", input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert "created account bob" in output and PASSWORD not in output


def test_refusals_are_clear_errors(home: Path) -> None:
    _ok("account", "create", "alice", "--email", "alice@example.org", "--password", PASSWORD)
    again = ["account", "create", "alice", "--email", "other@example.org", "--password", PASSWORD]
    result = runner.invoke(app, again)
    assert result.exit_code == 1 and "username is taken" in result.output

    result = runner.invoke(app, ["key", "create", "nobody", "--scopes", "read"])
    assert result.exit_code == 1 and "no account 'nobody'" in result.output
    result = runner.invoke(app, ["key", "create", "alice", "--scopes", "read,fly"])
    assert result.exit_code == 1 and "scopes" in result.output

    result = runner.invoke(app, ["tournament", "create", "--number", "8", "--name", "classic",
                                 "--dataset", "missing"])  # fmt: skip
    assert result.exit_code == 1 and "missing" in result.output
    result = runner.invoke(app, ["round", "list", "--tournament", "9"])
    assert result.exit_code == 1 and "no tournament 9" in result.output


def test_tournament_rounds_and_server(home: Path) -> None:
    _ok("data", "build", "--source", "synthetic", "--stocks", "40", "--weeks", "110",
        "--seed", "3", "--version", "v1")  # fmt: skip
    output = _ok("tournament", "create", "--number", "8", "--name", "classic",
                 "--cadence", "daily", "--rules", "classic", "--dataset", "v1")  # fmt: skip
    assert "created tournament 8" in output and "live.parquet" in output
    assert "meta_model.parquet" in output
    assert (home / "files" / "v1" / "train.parquet").is_file()
    output = _ok("tournament", "list")
    assert "classic" in output and "daily" in output and "v1" in output and "open" in output

    result = runner.invoke(app, ["tournament", "create", "--number", "8", "--name", "other",
                                 "--dataset", "v1"])  # fmt: skip
    assert result.exit_code == 1 and "number 8 is taken" in result.output
    result = runner.invoke(app, ["tournament", "create", "--number", "9", "--name", "other",
                                 "--dataset", "v1", "--live", "shut"])  # fmt: skip
    assert result.exit_code == 1 and "live" in result.output and "'closed'" in result.output

    output = _ok("round", "open", "--tournament", "8", "--now")
    assert "round 1 of tournament 8 is open" in output
    assert (home / "files" / "v1" / "live_1.parquet").is_file()
    output = _ok("round", "list", "--tournament", "8")
    assert "open" in output

    result = runner.invoke(
        app, ["round", "close", "--tournament", "8", "--number", "1"], input="n\n"
    )
    assert result.exit_code == 1
    assert "closed round 1" in _ok("round", "close", "--tournament", "8", "--number", "1", "--yes")
    assert "closed" in _ok("round", "list", "--tournament", "8")
    result = runner.invoke(app, ["round", "close", "--tournament", "8", "--number", "2", "--yes"])
    assert result.exit_code == 1 and "no round 2" in result.output

    # a participant's key from the CLI, for numerapi against the served app below
    _ok("account", "create", "carol", "--email", "carol@example.org", "--password", PASSWORD)
    output = _ok("key", "create", "carol", "--name", "laptop", "--scopes", "read,upload")
    public_id = re.search(r"public id:\s+([0-9A-F]{32})", output)
    secret = re.search(r"secret key:\s+([0-9A-F]{64})", output)
    assert public_id and secret, output

    # serve: the app and the scheduler on the same database, started and stopped
    warnings: list[str] = []
    server = build_server(Settings(), port=0, tick_seconds=0.05, warn=warnings.append)
    assert server.scheduler.runtime(8).publisher is not None
    # a synthetic market goes on generating days as the calendar asks: serve scores its rounds
    assert warnings == [] and server.scheduler.runtime(8).targets is not None
    server.server.config.log_level = "warning"
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.server.servers[0].sockets[0].getsockname()[1]
    response = httpx.post(
        f"http://127.0.0.1:{port}/", json={"query": "{ rounds(tournament: 8) { number } }"}
    )
    assert response.status_code == 200 and response.json()["data"]["rounds"] == [{"number": 1}]
    previous = numerapi.base_api.API_TOURNAMENT_URL
    numerapi.base_api.API_TOURNAMENT_URL = f"http://127.0.0.1:{port}/"
    try:
        napi = numerapi.NumerAPI(public_id[1], secret[1])
        assert napi.get_current_round() == 1
        assert napi.get_account()["username"] == "carol"
        # the validation meta model, published with the tournament, for any round_num
        path = napi.download_dataset(
            "v1/meta_model.parquet", str(home / "mm" / "meta_model.parquet"), round_num=842
        )
        meta_model = pd.read_parquet(path)
        validation = pd.read_parquet(home / "files" / "v1" / "validation.parquet")
        assert list(meta_model.columns) == ["numerai_meta_model"]
        assert meta_model.index.name == "id"
        assert set(meta_model.index) == set(validation.index)
    finally:
        numerapi.base_api.API_TOURNAMENT_URL = previous
    assert server.diagnostics.is_alive()  # diagnostics run beside the web server
    server.server.should_exit = True
    thread.join(timeout=10)
    assert not thread.is_alive() and server.stop.is_set()
    assert not server.diagnostics.is_alive()


def test_serve_says_when_a_recorded_market_has_ended_unless_it_is_replayed(
    home: Path, tmp_path: Path
) -> None:
    panel = SyntheticMarket(SyntheticConfig(n_stocks=30, n_weeks=110, seed=4)).panel()
    prices = panel.close.stack().rename("close").rename_axis(["date", "ticker"]).reset_index()
    prices.to_csv(tmp_path / "prices.csv", index=False)
    _ok("data", "build", "--source", "file", "--path", str(tmp_path / "prices.csv"),
        "--version", "recorded")  # fmt: skip
    _ok("tournament", "create", "--number", "9", "--name", "recorded", "--cadence", "daily",
        "--dataset", "recorded")  # fmt: skip
    ended = panel.dates[-1].date()

    warnings: list[str] = []
    server = build_server(Settings(), port=0, warn=warnings.append)
    server.engine.dispose()
    server.listener.close()
    assert warnings == [
        f"[yellow]tournament 9: its recorded market ends on {ended}; its rounds resolve unscored[/]"
    ]
    assert server.scheduler.runtime(9).publisher is not None
    assert server.scheduler.runtime(9).targets is None

    # replayed far enough behind the calendar, the recording still has days to score
    weeks = (SystemClock().now().date() - ended).days // 7 + 4
    warnings.clear()
    server = build_server(Settings(), port=0, warn=warnings.append, replay_weeks={9: weeks})
    server.engine.dispose()
    server.listener.close()
    assert warnings == [] and server.scheduler.runtime(9).targets is not None
    today = SystemClock().now().date()
    publisher = server.scheduler.runtime(9).publisher
    assert isinstance(publisher, FeedPublisher)
    assert publisher.market_date(today) == today - timedelta(weeks=weeks)
