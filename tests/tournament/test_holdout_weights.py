"""The operator's test-set record and the meta model weighted by it: a 2017 tournament set to
``"meta_model": {"weights": "stake_x_test"}`` blends each on-time upload by its stake at risk
× max(0, ln 2 − its test-set log-loss); the blend and its weights are recorded when fixed,
and a replay reproduces them. The setting is validated with the tournament's settings."""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.models import Cadence, MetaModel, Rules, Submission, SubmissionCheck
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.scoring.metamodel import stake_weighted_meta_model, stake_x_test_weights
from crowdquant.storage import LocalStorage
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.rounds import (
    FeedPublisher,
    open_round_now,
)
from crowdquant.tournament.rules2017_files import Rules2017Rounds, tournament_rows
from crowdquant.tournament.rules2017_record import holdout_record
from crowdquant.tournament.scoring import (
    FeedTargets,
    replay_round,
    score_round,
    stored_meta_model,
)
from crowdquant.tournament.settings_model import settings_of
from crowdquant.tournament.staking import grant_nmr, stake_on_round
from crowdquant.tournament.tournaments import (
    InvalidTournament,
    create_tournament,
    get_tournament,
    update_settings,
)

from .live_market import KEYS, TUESDAY_NOON, build_dataset_version, local_storage, market_feed
from .test_rules2017_rounds import as_csv, full_upload, new_account, upload

LEGACY = 11
DAY = timedelta(days=1)
STAKE_X_TEST = {"meta_model": {"weights": "stake_x_test"}}
# name: (how far its probabilities lean towards the targets, its stake on the round in NMR)
PLAYERS = {"alice": (0.30, 100), "bob": (0.15, 300), "carol": (0.0, 200), "dave": (0.25, 0)}


@pytest.fixture(scope="module")
def version(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    return build_dataset_version(tmp_path_factory.mktemp("legacy"), version="v2")


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TUESDAY_NOON + timedelta(minutes=5))


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return local_storage(tmp_path / "files")


@pytest.fixture
def session(sessions: sessionmaker[Session], clock: ManualClock) -> Iterator[Session]:
    with sessions() as session:
        SqlLedger(clock).genesis(session)
        create_tournament(
            session,
            clock,
            LEGACY,
            "legacy",
            Rules.RULES2017,
            Cadence.WEEKLY,
            "v2",
            STAKE_X_TEST,
        )
        session.commit()
        yield session


def test_the_weighting_setting_is_validated(session: Session, clock: ManualClock) -> None:
    legacy = get_tournament(session, LEGACY)
    assert settings_of(legacy).meta_model.weights == "stake_x_test"
    classic = create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
    assert settings_of(classic).meta_model.weights == "stake"  # the default
    update_settings(session, classic, {"meta_model": {"weights": "stake"}})
    assert settings_of(classic).meta_model.weights == "stake"
    update_settings(session, legacy, {"meta_model": {}})
    assert settings_of(legacy).meta_model.weights == "stake"
    refused = {
        "a test set (2017 rules)": (classic, STAKE_X_TEST),
        "weights is one of 'stake', 'stake_x_reputation', 'stake_x_test', not 'equal'": (
            legacy,
            {"meta_model": {"weights": "equal"}},
        ),
        'one key, "weights"': (legacy, {"meta_model": {"weights": "stake", "alpha": 1}}),
        "an object": (legacy, {"meta_model": "stake_x_test"}),
    }
    for message, (tournament, settings) in refused.items():
        before = dict(tournament.settings)
        with pytest.raises(
            InvalidTournament, match=message.replace("(", r"\(").replace(")", r"\)")
        ):
            update_settings(session, tournament, settings)
        assert tournament.settings == before
    with pytest.raises(InvalidTournament, match="2017 rules"):
        create_tournament(
            session, clock, 9, "other", Rules.CLASSIC, Cadence.DAILY, "v1", STAKE_X_TEST
        )


def test_stake_x_test_weights() -> None:
    weights = stake_x_test_weights([2.0, 1.0, 3.0, 4.0], [0.5, 0.7, np.nan, math.log(2) - 0.1])
    assert weights == pytest.approx([2 * (math.log(2) - 0.5), 0.0, 0.0, 0.4])
    with pytest.raises(ValueError, match="not negative"):
        stake_x_test_weights([-1.0], [0.5])


def test_the_meta_model_is_weighted_by_stake_times_the_test_set_edge(
    session: Session, clock: ManualClock, storage: LocalStorage, version: DatasetVersion
) -> None:
    ledger = SqlLedger(clock)
    publisher = FeedPublisher(market_feed(), storage, files_2017=Rules2017Rounds(version, KEYS))
    round_ = open_round_now(session, clock, get_tournament(session, LEGACY), publisher)
    session.commit()
    rows = tournament_rows(session, storage, round_)
    assert rows is not None
    lean = rows["target"].astype("float64").fillna(0.5) - 0.5
    uploads: dict[str, tuple[Submission, pd.Series]] = {}
    for seed, (name, (strength, amount)) in enumerate(PLAYERS.items()):
        account, model = new_account(session, clock, name)
        values = (full_upload(rows, seed) + strength * lean).clip(0.05, 0.95).round(6)
        submission = upload(session, clock, storage, account, model, round_, as_csv(values))
        uploads[name] = (submission, values)
        if amount:
            grant_nmr(session, ledger, account, 1_000 * NMR_UNIT, f"welcome {name}")
            stake_on_round(session, ledger, clock, model, amount * NMR_UNIT, Decimal("0.5"))
        session.commit()
        clock.advance(timedelta(minutes=1))
    checks = {
        (row.submission_id, row.metric): row.value
        for row in session.scalars(select(SubmissionCheck))
    }
    test_logloss = {name: checks[sub.id, "test_logloss"] for name, (sub, _) in uploads.items()}
    assert test_logloss["alice"] < test_logloss["bob"] < math.log(2) < test_logloss["carol"]

    clock.set(round_.close_time + timedelta(minutes=1))
    RoundLifecycle(None, clock).close(session, round_)
    RoundLifecycle(None, clock).start_scoring(session, round_)
    session.commit()
    clock.advance(8 * DAY)
    assert score_round(session, clock, storage, round_, FeedTargets(market_feed())) is not None
    session.commit()

    fixed = session.scalars(select(MetaModel).where(MetaModel.round_id == round_.id)).one()
    assert fixed.weighting == "stake_x_test"
    expected = {
        name: PLAYERS[name][1] * max(0.0, math.log(2) - test_logloss[name]) for name in PLAYERS
    }
    assert expected["alice"] > 0 and expected["bob"] > 0
    assert expected["carol"] == 0.0 and expected["dave"] == 0.0  # no edge; no stake
    assert fixed.weights == pytest.approx(
        {str(sub.id): expected[name] for name, (sub, _) in uploads.items()}
    )

    # the blend, computed here from the uploads' live rows with those weights
    live = rows[rows["data_type"] == "live"]
    blended = stored_meta_model(session, storage, round_)
    assert blended is not None
    by_id = {
        name: pd.Series(values[live.index].to_numpy(), index=live["original_id"].astype(str))
        for name, (_, values) in uploads.items()
    }
    matrix = np.column_stack([by_id[name].reindex(blended.index) for name in PLAYERS])
    assert not np.isnan(matrix).any()
    weights = [expected[name] for name in PLAYERS]
    assert blended.to_numpy() == pytest.approx(stake_weighted_meta_model(matrix, weights))
    stake_only = stake_weighted_meta_model(matrix, [PLAYERS[name][1] for name in PLAYERS])
    assert not np.allclose(blended.to_numpy(), stake_only)

    # the weighting changed afterwards: the fixed meta model and the scores replay unchanged
    update_settings(session, get_tournament(session, LEGACY), {})
    session.commit()
    assert replay_round(session, clock, storage, round_) == []
    again = session.scalars(select(MetaModel).where(MetaModel.round_id == round_.id)).one()
    assert (again.weighting, again.sha256) == ("stake_x_test", fixed.sha256)

    # the operator's record: each model's test-set log-loss in the round, and its mean
    record = holdout_record(session, get_tournament(session, LEGACY))
    assert record.rounds == [round_.number]
    lines = {line.model: line for line in record.lines}
    for name in PLAYERS:
        line = lines[f"{name}_model"]
        assert line.by_round == {round_.number: pytest.approx(test_logloss[name])}
        assert line.mean == pytest.approx(test_logloss[name])
    best_first = sorted(PLAYERS, key=lambda name: test_logloss[name])
    assert [line.model for line in record.lines] == [f"{name}_model" for name in best_first]
