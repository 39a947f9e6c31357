"""Leaderboards, round tables and score histories from the stored scores."""

from __future__ import annotations

import itertools
import math
from datetime import timedelta

import pandas as pd
import pytest
from sqlalchemy import select

from crowdquant.db.models import Model, Round
from crowdquant.db.session import transaction
from crowdquant.tournament.leaderboard import (
    _did_well,
    _means,
    account_leaderboard,
    model_leaderboard,
    model_score_history,
    round_table,
)
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.visibility import Viewer

from .scored_round import DAY, World, add_hidden_score, market_feed, score, stored_scores


@pytest.fixture
def resolved(world: World) -> World:
    world.clock.advance(40 * DAY)
    score(world, FeedTargets(market_feed()))
    with transaction(world.sessions) as session:
        RoundLifecycle(None, world.clock).resolve(session, session.get_one(Round, world.round_id))
    return world


def _finals(world: World, metric: str) -> pd.Series:
    stored = stored_scores(world)
    final = stored[(stored["day"] == 20) & (stored["metric"] == metric)]
    return final.set_index("model")["value"]


def _ranked(values: pd.Series) -> pd.Series:
    """Highest first, ties by name (alice_b copies alice_a's ranking: equal CORR)."""
    frame = values.rename("value").rename_axis("name").reset_index()
    ordered = frame.sort_values(["value", "name"], ascending=[False, True])
    return ordered.set_index("name")["value"]


def test_models_rank_by_reputation_and_late_ones_do_not_count(resolved: World) -> None:
    world = resolved
    corr = _finals(world, "corr")
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        board = model_leaderboard(session, tournament, world.clock.now(), Viewer.public())
    on_time = _ranked(corr.drop("latecomer"))
    assert [row.name for row in board][:4] == list(on_time.index)
    assert [row.rank for row in board] == [1, 2, 3, 4, 5]
    top = board[0]
    assert top.reputation["corr"] == pytest.approx(on_time.iloc[0])
    assert top.consistency == (1.0 if on_time.iloc[0] > 0 else 0.0)
    assert top.rounds == 1 and top.latest_round == 1 and top.stake == 0
    latecomer = board[-1]
    assert latecomer.name == "latecomer" and latecomer.reputation == {} and latecomer.rounds == 0
    assert latecomer.latest["corr"] == pytest.approx(corr["latecomer"])  # shown, not counted


def test_accounts_pool_their_models_rounds(resolved: World) -> None:
    world = resolved
    corr = _finals(world, "corr")
    with transaction(world.sessions) as session:
        board = account_leaderboard(
            session, get_tournament(session, 8), world.clock.now(), Viewer.public()
        )
    by_name = {row.name: row for row in board}
    assert by_name["alice"].reputation["corr"] == pytest.approx(corr[["alice_a", "alice_b"]].mean())
    assert by_name["bob"].reputation["corr"] == pytest.approx(corr[["bob", "bench"]].mean())


def test_reputation_forgets_rounds_outside_the_window(resolved: World) -> None:
    world = resolved
    with transaction(world.sessions) as session:
        tournament = get_tournament(session, 8)
        later = world.clock.now() + timedelta(days=400)
        board = model_leaderboard(session, tournament, later, Viewer.public())
    assert all(row.reputation == {} and row.rounds == 0 for row in board)


def test_round_table_and_history_with_percentiles(resolved: World) -> None:
    world = resolved
    corr = _finals(world, "corr")
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        table = round_table(session, round_, Viewer.public())
        assert [row.model for row in table if row.rank is not None] == list(
            _ranked(corr.drop("latecomer")).index
        )
        assert table[-1].model == "latecomer" and table[-1].rank is None and table[-1].late
        model = session.scalars(select(Model).where(Model.name == "bob")).one()
        history = model_score_history(session, model, Viewer.public(), metric="corr")
    assert [score.day for score in history] == list(range(1, 21))
    expected = corr.rank(pct=True)["bob"]
    assert history[-1].percentile == pytest.approx(expected)
    assert history[-1].value == pytest.approx(corr["bob"])


def test_hidden_metrics_are_shown_to_the_operator_only(resolved: World) -> None:
    world = resolved
    with transaction(world.sessions) as session:
        row = add_hidden_score(session, day=20)
        model = session.get_one(Model, row.model_id)
        public = model_score_history(session, model, Viewer.public())
        operator = model_score_history(session, model, Viewer.operator())
        assert "test_logloss" not in {score.metric for score in public}
        assert "test_logloss" in {score.metric for score in operator}
        round_ = session.get_one(Round, row.round_id)
        assert all(
            "test_logloss" not in r.scores for r in round_table(session, round_, Viewer.public())
        )


def test_a_2017_round_went_well_below_its_benchmark_models_else_below_ln_2() -> None:
    finals = pd.DataFrame(
        [
            ("r1", "a", "logloss", 0.690),  # below ln 2, above the models: not well
            ("r1", "a", "benchmark_logloss", 0.685),
            ("r1", "b", "logloss", 0.680),  # below the models
            ("r1", "b", "benchmark_logloss", 0.685),
            ("r2", "a", "logloss", 0.690),  # no models' figure that round: below ln 2
            ("r2", "b", "logloss", 0.700),
        ],
        columns=["round_id", "model_id", "metric", "value"],
    )
    well = _did_well(finals, "logloss", higher_is_better=False)
    assert well.tolist() == [False, True, True, False]
    assert _did_well(finals, "benchmark_logloss", higher_is_better=True).all()


def test_a_mean_score_does_not_depend_on_the_order_the_rows_are_read_in() -> None:
    """The database hands the scores back in the order of their random ids: every order of
    the same values gives the same reputation, to the last bit (their exact mean)."""
    values = [1.257302210933933e-15, -0.00013210486329130188, 6.40422650443282e-07, 0.01049001171]
    means = {
        _means(pd.DataFrame({"metric": "corr", "value": [*order, float("nan")]}))["corr"]
        for order in itertools.permutations(values)
    }
    assert means == {math.fsum(values) / len(values)}
