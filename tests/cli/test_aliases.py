"""`crowdquant data alias` as an operator types it (SQLite in CROWDQUANT_HOME)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.clock import ManualClock
from crowdquant.db.models import Cadence, DatasetFile, Rules
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.settings import Settings
from crowdquant.tournament.datasets import list_dataset_aliases
from crowdquant.tournament.tournaments import create_tournament

runner = CliRunner()


def _run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def _aliases() -> dict[str, str]:
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            return list_dataset_aliases(session)
    finally:
        engine.dispose()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    _run("db", "upgrade")
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            session.add(
                DatasetFile(
                    version="v5.3",
                    filename="train.parquet",
                    size=1,
                    sha256="0" * 64,
                    storage_key="v5.3/train.parquet",
                    published_at=datetime(2026, 1, 6, tzinfo=UTC),
                )
            )
    finally:
        engine.dispose()
    return tmp_path / "home"


def test_alias_added_listed_and_removed(home: Path) -> None:
    assert "no aliases" in _run("data", "alias")
    assert "v5.3 is served as v5.2 too" in _run("data", "alias", "v5.2", "v5.3")
    assert "v5.2 → v5.3" in _run("data", "alias")
    assert "no published dataset version 'v4'" in _run("data", "alias", "v5.1", "v4", code=1)
    assert "name the version" in _run("data", "alias", "v5.1", code=1)
    assert _aliases() == {"v5.2": "v5.3"}
    assert "v5.2 no longer serves v5.3" in _run("data", "alias", "v5.2", "--remove")
    assert "no dataset alias 'v5.2'" in _run("data", "alias", "v5.2", "--remove", code=1)
    assert _aliases() == {}


def test_the_tournament_listing_names_each_datasets_aliases(home: Path) -> None:
    engine = make_engine(Settings().database)
    try:
        with transaction(session_factory(engine)) as session:
            clock = ManualClock(datetime(2026, 1, 6, tzinfo=UTC))
            create_tournament(session, clock, 8, "main", Rules.CLASSIC, Cadence.DAILY, "v5.3")
    finally:
        engine.dispose()
    assert re.search(r"│ v5\.3\s+│ -\s+│", _run("tournament", "list"))
    _run("data", "alias", "v5.2", "v5.3")
    _run("data", "alias", "v5.1", "v5.3")
    assert re.search(r"│ v5\.3\s+│ v5\.1, v5\.2\s+│", _run("tournament", "list"))
