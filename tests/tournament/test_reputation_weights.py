"""The meta model weighted by stake × reputation: a tournament set to
``"meta_model": {"weights": "stake_x_reputation"}`` blends each on-time upload by its stake at
risk × the trust its model's CORR reputation earned by the round's close; a model without a
resolved on-time round counts with the floor. The weights are recorded with the meta model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select

from crowdquant.db.models import MetaModel, Model, Round, StakeChangeKind, Submission
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.scoring.metamodel import TRUST_FLOOR, reputation_trust
from crowdquant.tournament.accounts import get_account
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.staking import change_stake, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import get_tournament, update_settings

from .scored_round import DAY, World, market_feed, score, stored_scores, upload

STAKES = {"alice_a": 100, "bob": 300, "latecomer": 200}  # NMR; the latecomer has no record


def test_the_meta_model_weighs_stake_by_the_trust_of_each_models_reputation(
    world: World,
) -> None:
    world.clock.advance(40 * DAY)
    score(world, FeedTargets(market_feed()))
    with transaction(world.sessions) as session:
        RoundLifecycle(None, world.clock).resolve(session, session.get_one(Round, world.round_id))
    finals = stored_scores(world)
    final_corr = finals[(finals["day"] == 20) & (finals["metric"] == "corr") & ~finals["late"]]
    reputation = final_corr.set_index("model")["value"]
    assert "latecomer" not in reputation.index

    ledger = SqlLedger(world.clock)
    rng = np.random.default_rng(11)
    with transaction(world.sessions) as session:
        ledger.genesis(session)
        tournament = get_tournament(session, 8)
        update_settings(
            session,
            tournament,
            {**tournament.settings, "meta_model": {"weights": "stake_x_reputation"}},
        )
        assert settings_of(tournament).meta_model.weights == "stake_x_reputation"
        round_ = open_round(
            session, world.clock, tournament, FeedPublisher(market_feed(), world.storage)
        )
        ids = live_ids_of_round(world.storage, round_)
        for name, amount in STAKES.items():
            owner = get_account(session, "alice" if name.startswith("alice") else "bob")
            model = session.get_one(Model, world.models[name])
            grant_nmr(session, ledger, owner, amount * NMR_UNIT, f"grant {name}")
            change_stake(
                session, ledger, world.clock, model, StakeChangeKind.INCREASE, amount * NMR_UNIT
            )
            values = pd.Series(rng.uniform(0, 1, len(ids)), index=ids).round(6)
            upload(session, world.clock, world.storage, round_, owner, model.id, values)
        second = round_.id
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, second)
        world.clock.set(round_.close_time + DAY / 24)
        RoundLifecycle(ledger, world.clock).close(session, round_)
        RoundLifecycle(ledger, world.clock).start_scoring(session, round_)
    world.clock.advance(8 * DAY)
    world.round_id = second
    assert score(world, FeedTargets(market_feed())) is not None

    with transaction(world.sessions) as session:
        fixed = session.scalars(select(MetaModel).where(MetaModel.round_id == second)).one()
        submitted = {
            sub.model_id: str(sub.id)
            for sub in session.scalars(select(Submission).where(Submission.round_id == second))
        }
        assert fixed.weighting == "stake_x_reputation"
        known = reputation.reindex(list(STAKES)).to_numpy()
        trust = dict(zip(STAKES, reputation_trust(known), strict=True))
        assert trust["latecomer"] == TRUST_FLOOR
        assert trust["alice_a"] == 1.0 and TRUST_FLOOR < trust["bob"] < 1.0  # the fixture's
        expected = {
            submitted[world.models[name]]: amount * trust[name] for name, amount in STAKES.items()
        }
        assert fixed.weights == pytest.approx(expected)
