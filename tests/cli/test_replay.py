"""`crowdquant round replay`: a scored round reproduces exactly; a tampered score is listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.db.models import RoundScore
from crowdquant.db.session import transaction
from crowdquant.tournament.scoring import FeedTargets

from ..tournament.scored_round import DAY, World, market_feed, score


def test_replay_reproduces_a_round_then_finds_a_change(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    world.clock.advance(10 * DAY)
    score(world, FeedTargets(market_feed()))
    home = tmp_path / "home"
    shutil.copytree(world.storage.root, home / "files")  # the operator's storage
    engine = world.sessions.kw["bind"]
    monkeypatch.setenv("CROWDQUANT_HOME", str(home))
    monkeypatch.setenv("CROWDQUANT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    same = runner.invoke(app, ["round", "replay", "--tournament", "8", "--round", "1"])
    assert same.exit_code == 0, same.output
    assert "reproduced exactly" in same.output

    with transaction(world.sessions) as session:
        row = session.scalars(select(RoundScore).where(RoundScore.metric == "mmc")).first()
        assert row is not None
        session.execute(
            update(RoundScore).where(RoundScore.id == row.id).values(value=(row.value or 0) + 1)
        )
    changed = runner.invoke(app, ["round", "replay", "--tournament", "8", "--round", "1"])
    assert changed.exit_code == 1
    assert f"mmc day {row.day}" in changed.output and "1 of" in changed.output
