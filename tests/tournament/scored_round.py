"""A scored round for the scoring and leaderboard tests: five models on a wide synthetic
market, one of them late, closed and scoring (fixture `world`, through conftest)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.config import DatasetConfig
from crowdquant.data.feed import MarketFeed, SyntheticMovingMarket
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.db.models import Account, Cadence, Round, RoundScore, Rules
from crowdquant.db.session import transaction
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.scoring import ScoringUpdate, TargetSource, score_round
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from .live_market import KEYS, TUESDAY_NOON, local_storage, read_parquet

# Wider than the shared test market: FNC needs more stocks than the 148 features.
WIDE_MARKET = SyntheticConfig(n_stocks=260, n_weeks=70, seed=3)


@cache
def market_feed() -> MarketFeed:
    market = SyntheticMovingMarket(SyntheticMarket(WIDE_MARKET))
    return MarketFeed(market, KEYS, DatasetConfig(), has_volume=True)


CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
DAY = timedelta(days=1)


@dataclass
class World:
    sessions: sessionmaker[Session]
    clock: ManualClock
    storage: LocalStorage
    round_id: uuid.UUID
    live: pd.DataFrame  # the published live file: features
    predictions: dict[str, pd.Series]  # model name → uploaded predictions
    late: set[str]
    models: dict[str, uuid.UUID]


def upload(
    session: Session,
    world_clock: ManualClock,
    storage: LocalStorage,
    round_: Round,
    account: Account,
    model_id: uuid.UUID,
    values: pd.Series,
) -> None:
    data = values.rename("prediction").rename_axis("id").reset_index().to_csv(index=False)
    submit_predictions(
        session,
        world_clock,
        storage,
        account,
        model_id,
        round_,
        "predictions.csv",
        data.encode(),
        live_ids=values.index,
    )


@pytest.fixture
def world(sessions: sessionmaker[Session], tmp_path: Path) -> World:
    return scored_world(sessions, tmp_path)


def scored_world(sessions: sessionmaker[Session], tmp_path: Path) -> World:
    """Five models (one late) in a closed, scoring round; nothing scored yet."""
    clock = ManualClock(TUESDAY_NOON + timedelta(minutes=5))
    storage = local_storage(tmp_path / "files")
    publisher = FeedPublisher(market_feed(), storage)
    rng = np.random.default_rng(7)
    with transaction(sessions) as session:
        create_tournament(
            session,
            clock,
            8,
            "classic",
            Rules.CLASSIC,
            Cadence.DAILY,
            "v1",
            # alice_b nearly copies alice_a, yet counts as a model of its own here:
            # near-duplicates counting once is tested on its own
            {"benchmark_models": ["bench"], "duplicate_threshold": 1},
        )
        alice = sign_up(session, clock, "alice", "a@example.org", "x" * 10, hasher=CHEAP)
        bob = sign_up(session, clock, "bob", "b@example.org", "x" * 10, hasher=CHEAP)
        owners = {"alice_a": alice, "alice_b": alice, "bob": bob, "bench": bob, "latecomer": bob}
        models = {
            name: create_model(session, clock, owner, 8, name).id for name, owner in owners.items()
        }
        round_ = open_round(session, clock, get_tournament(session, 8), publisher)
        ids = live_ids_of_round(storage, round_)
        live = read_parquet(storage, f"v1/live_{round_.number}.parquet")
        predictions = {
            name: pd.Series(rng.uniform(0, 1, len(ids)), index=ids).round(6) for name in owners
        }
        predictions["alice_b"] = predictions["alice_a"].rank(pct=True)  # a near-copy
        for name in ("alice_a", "alice_b", "bob", "bench"):
            owner = owners[name]
            upload(session, clock, storage, round_, owner, models[name], predictions[name])
        round_id = round_.id
    # the round closes; the latecomer uploads after the close
    with transaction(sessions) as session:
        round_ = session.get_one(Round, round_id)
        clock.set(round_.close_time + timedelta(minutes=1))
        RoundLifecycle(None, clock).close(session, round_)
        upload(
            session,
            clock,
            storage,
            round_,
            session.merge(bob),
            models["latecomer"],
            predictions["latecomer"],
        )
        RoundLifecycle(None, clock).start_scoring(session, round_)
    return World(sessions, clock, storage, round_id, live, predictions, {"latecomer"}, models)


def score(world: World, source: TargetSource) -> ScoringUpdate | None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        return score_round(session, world.clock, world.storage, round_, source)


def stored_scores(world: World) -> pd.DataFrame:
    with transaction(world.sessions) as session:
        rows = session.scalars(select(RoundScore).where(RoundScore.round_id == world.round_id))
        names = {model_id: name for name, model_id in world.models.items()}
        return pd.DataFrame(
            [
                {
                    "model": names[row.model_id],
                    "metric": row.metric,
                    "day": row.day,
                    "value": row.value,
                    "late": row.late,
                    "version": row.scoring_version,
                }
                for row in rows
            ]
        )


def add_hidden_score(session: Session, day: int) -> RoundScore:
    """A `test_logloss` (a hidden-holdout metric) beside a stored score of `day`."""
    row = session.scalars(select(RoundScore).where(RoundScore.day == day)).first()
    assert row is not None
    hidden = RoundScore(
        id=uuid.uuid4(),
        round_id=row.round_id,
        model_id=row.model_id,
        submission_id=row.submission_id,
        metric="test_logloss",
        day=day,
        value=0.69,
        late=False,
        scoring_version=row.scoring_version,
        computed_at=row.computed_at,
    )
    session.add(hidden)
    session.flush()
    return hidden
