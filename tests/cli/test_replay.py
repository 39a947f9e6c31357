"""`crowdquant round replay|resolve|results`: a scored round reproduces exactly, a resolved
round's payouts too; a tampered score or payout is listed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.db.models import Model, Round, RoundPayout, RoundScore, StakeChangeKind
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.staking import change_stake, freeze_stakes, grant_nmr

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


def test_resolve_results_replay_and_audit_cover_the_payouts(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A staked round resolved by hand: its results are printed, the replay reproduces every
    payout and names a tampered one, and the audit finds the books sound."""
    books = SqlLedger(world.clock)
    with transaction(world.sessions) as session:
        books.genesis(session)
        for name in ("alice_a", "bob"):
            model = session.get_one(Model, world.models[name])
            grant_nmr(session, books, model.account, 100 * NMR_UNIT, f"grant-{name}")
            change_stake(
                session, books, world.clock, model, StakeChangeKind.INCREASE, 40 * NMR_UNIT
            )
        freeze_stakes(session, books, world.clock, session.get_one(Round, world.round_id))
    world.clock.advance(40 * DAY)
    score(world, FeedTargets(market_feed()))
    home = tmp_path / "home"
    shutil.copytree(world.storage.root, home / "files")
    engine = world.sessions.kw["bind"]
    monkeypatch.setenv("CROWDQUANT_HOME", str(home))
    monkeypatch.setenv("CROWDQUANT_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    runner = CliRunner()

    early = runner.invoke(app, ["round", "results", "--tournament", "8", "--round", "1"])
    assert early.exit_code == 1 and "has not resolved yet" in early.output
    resolved = runner.invoke(app, ["round", "resolve", "--tournament", "8", "--number", "1", "-y"])
    assert resolved.exit_code == 0, resolved.output
    text = " ".join(resolved.output.split())
    assert "participants 4, controlling capital 2 (80 NMR at risk)" in text
    assert "alice_a: at risk 40 NMR" in text and "bob: at risk 40 NMR" in text
    again = runner.invoke(app, ["round", "resolve", "--tournament", "8", "--number", "1", "-y"])
    assert again.exit_code == 0 and "already resolved" in again.output
    results = runner.invoke(app, ["round", "results", "--tournament", "8", "--round", "1"])
    assert results.exit_code == 0 and " ".join(results.output.split()) == text

    same = runner.invoke(app, ["round", "replay", "--tournament", "8", "--round", "1"])
    assert same.exit_code == 0, same.output
    assert "all 2 payouts reproduced exactly" in same.output
    audit = runner.invoke(app, ["ledger", "audit"])
    assert audit.exit_code == 0 and "sound" in audit.output

    with transaction(world.sessions) as session:
        paid = session.scalars(
            select(RoundPayout).where(RoundPayout.model_id == world.models["bob"])
        ).one()
        paid.nmr += 1
    changed = runner.invoke(app, ["round", "replay", "--tournament", "8", "--round", "1"])
    assert changed.exit_code == 1
    assert f"model {world.models['bob']}" in changed.output
    assert "1 of 2 payouts differ" in changed.output
