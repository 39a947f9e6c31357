"""The meta model weighted by stake × reputation: a tournament set to
``"meta_model": {"weights": "stake_x_reputation"}`` blends each on-time upload by its stake at
risk × the trust its model's CORR reputation earned by the round's close; a model without a
resolved on-time round counts with the floor. The weights are recorded with the meta model."""

from __future__ import annotations

import math
import uuid
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import (
    Cadence,
    MetaModel,
    Model,
    Round,
    RoundScore,
    RoundStatus,
    Rules,
    StakeChangeKind,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.scoring.metamodel import TRUST_FLOOR, reputation_trust
from crowdquant.tournament.accounts import get_account, sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.scoring import FeedTargets
from crowdquant.tournament.scoring.inputs import ScoredSubmission, _corr_reputations
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.staking import change_stake, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament, update_settings

from .live_market import TUESDAY_NOON
from .scored_round import CHEAP, DAY, World, market_feed, score, stored_scores, upload

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


def test_a_reputation_is_the_exact_mean_whatever_order_the_rounds_ids_sort_in(
    sessions: sessionmaker[Session],
) -> None:
    """Two models with the same final CORRs, stored in rounds whose (random) ids sort one
    model's big score first and the other's last, get the same reputation, to the last bit:
    the exact mean, not a sum in the order the database reads the rows."""
    clock = ManualClock(TUESDAY_NOON)
    small = 1e-16  # lost when added to 1.0 alone, kept when added to another first
    values = {"first": [1.0, small, small], "last": [small, small, 1.0]}
    with transaction(sessions) as session:
        tournament = create_tournament(
            session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1"
        )
        owner = sign_up(session, clock, "alice", "a@example.org", "x" * 10, hasher=CHEAP)
        models = {name: create_model(session, clock, owner, 8, name) for name in values}
        rounds = [
            _round(
                session, tournament, number, uuid.UUID(int=number), clock.now() - (5 - number) * DAY
            )
            for number in (1, 2, 3)
        ]
        current = _round(session, tournament, 4, uuid.UUID(int=4), clock.now() + DAY)
        current.status = RoundStatus.OPEN
        for position, round_ in enumerate(rounds):  # inserted and keyed in the rounds' order
            for name, model in models.items():
                submission = Submission(
                    round_id=round_.id,
                    model_id=model.id,
                    file_key=f"{round_.number}/{name}.csv",
                    filename="predictions.csv",
                    status=SubmissionStatus.VALID,
                    created_at=round_.open_time,
                    validated_at=round_.open_time,
                )
                session.add(submission)
                session.flush()
                session.add(
                    RoundScore(
                        round_id=round_.id,
                        model_id=model.id,
                        submission_id=submission.id,
                        metric="corr",
                        day=20,
                        value=values[name][position],
                        scoring_version="test",
                        computed_at=round_.resolve_time,
                    )
                )
        session.flush()
        on_time = [
            ScoredSubmission(model.id, uuid.uuid4(), False, "", "") for model in models.values()
        ]
        reputations = _corr_reputations(session, current, on_time)
    exact = math.fsum(values["first"]) / 3
    assert sum(values["first"]) != sum(values["last"])  # in order, the sums differ
    assert reputations.tolist() == [exact, exact]


def _round(
    session: Session, tournament: Tournament, number: int, id_: uuid.UUID, resolved: datetime
) -> Round:
    """A resolved round of `tournament` (`resolved`: when), with the id `id_`."""
    round_ = Round(
        id=id_,
        tournament_id=tournament.id,
        number=number,
        status=RoundStatus.RESOLVED,
        open_time=resolved - 3 * DAY,
        close_staking_time=resolved - 2 * DAY,
        close_time=resolved - 2 * DAY,
        resolve_time=resolved,
        live_era=f"era{number}",
        dataset_version="v1",
    )
    session.add(round_)
    session.flush()
    return round_
