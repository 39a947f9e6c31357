"""`crowdquant model create|list|rename` as an operator types them (SQLite in CROWDQUANT_HOME)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.clock import SystemClock
from crowdquant.db.models import Cadence, Rules
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.settings import Settings
from crowdquant.tournament.models import list_all_models
from crowdquant.tournament.tournaments import create_tournament

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    _ok("db", "upgrade")  # creates the home
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            create_tournament(
                session, SystemClock(), 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1"
            )
    finally:
        engine.dispose()
    return tmp_path / "home"


def _ok(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _refused(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    return result.output


def _models() -> list[tuple[str, str]]:
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            return [(m.name, m.account.username) for m in list_all_models(session)]
    finally:
        engine.dispose()


def test_models_are_created_listed_and_renamed(home: Path) -> None:
    assert "no models yet" in _ok("model", "list")
    for name in ("alice", "bob"):
        _ok("account", "create", name, "--email", f"{name}@example.org", "--password", "x" * 12)

    output = _ok("model", "create", "alice", "Alice_Trees", "--tournament", "8")
    assert "created model alice_trees of alice in tournament 8" in output
    found = re.search(r"model id: ([0-9a-f-]{36})", output)
    assert found, output
    _ok("model", "create", "bob", "bob_nn")

    listed = _ok("model", "list")
    assert "alice_trees" in listed and "bob_nn" in listed and found[1] in listed
    only_bob = _ok("model", "list", "bob", "--tournament", "8")
    assert "bob_nn" in only_bob and "alice_trees" not in only_bob

    output = _ok("model", "rename", found[1], "alice_forest")
    assert "renamed model alice_trees to alice_forest in tournament 8" in output
    _ok("model", "rename", "bob_nn", "bob_net")
    assert sorted(_models()) == [("alice_forest", "alice"), ("bob_net", "bob")]

    # refusals change nothing
    assert "already in this tournament" in _refused("model", "create", "bob", "alice_forest")
    assert "already in this tournament" in _refused("model", "rename", "bob_net", "alice_forest")
    assert "there is no account 'carol'" in _refused("model", "create", "carol", "carol_m")
    assert "a model's name is" in _refused("model", "create", "alice", "no spaces")
    assert "there is no tournament 9" in _refused(
        "model", "create", "alice", "alice_m9", "--tournament", "9"
    )
    assert "tournament 8 has no model 'nobody'" in _refused("model", "rename", "nobody", "x_y")
    assert sorted(_models()) == [("alice_forest", "alice"), ("bob_net", "bob")]
