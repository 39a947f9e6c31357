"""Daily scoring of a closed round, checked against numerai-tools, and its replay."""

from __future__ import annotations

import hashlib
import io
import json

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt
from sklearn.metrics import log_loss
from sqlalchemy import insert, select, text

from crowdquant.db.models import (
    DatasetFile,
    MetaModel,
    Model,
    Round,
    RoundScore,
    RoundStatus,
    RoundTargets,
    Rules,
    Submission,
)
from crowdquant.db.session import transaction
from crowdquant.scoring import SCORING_VERSION
from crowdquant.storage import NotFound
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.scoring import (
    FeedTargets,
    days_recorded,
    replay_round,
    round_inputs,
    score_round,
)
from crowdquant.tournament.scoring.service import SCORES
from crowdquant.tournament.visibility import OPERATOR_PREFIX

from .live_market import stored_bytes
from .scored_round import DAY, World, market_feed, score, stored_scores

TOL = 1e-9


def _expected(world: World, day: int) -> pd.DataFrame:
    """The day's scores computed independently with numerai-tools from the market."""
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        feed = market_feed()
        assert round_.market_date is not None
        live = feed.live_era(round_.number, round_.live_era, pd.Timestamp(round_.market_date))
    # float64 as the server scores them: numerai-tools centres float32 targets in float32
    targets = feed.targets(live, day)["target"].astype(np.float64)
    frame = pd.DataFrame(world.predictions)
    on_time = [name for name in frame.columns if name not in world.late]
    gauss = nt.gaussian(nt.tie_kept_rank(frame[on_time]))
    meta = nt.stake_weight(gauss, pd.Series(1.0, index=on_time))
    bench = nt.gaussian(nt.tie_kept_rank(frame[["bench"]]))["bench"]
    features = world.live.drop(columns=["era", "data_type"]).astype(float)
    return pd.DataFrame(
        {
            "corr": nt.numerai_corr(frame, targets),
            "mmc": nt.correlation_contribution(frame, meta, targets),
            "bmc": nt.correlation_contribution(frame, bench, targets),
            "fnc": nt.feature_neutral_corr(frame, features, targets),
        }
    )


def test_scores_each_revealed_day_once_and_matches_numerai_tools(world: World) -> None:
    source = FeedTargets(market_feed())
    assert score(world, source) is not None  # day 0 (similarity) right at close
    assert set(stored_scores(world)["day"]) == {0}

    world.clock.advance(8 * DAY)
    update = score(world, source)
    assert update is not None
    stored = stored_scores(world)
    days = sorted(set(stored["day"]) - {0})
    assert days and days == list(range(1, days[-1] + 1))
    assert score(world, source) is None  # nothing new: nothing done
    assert (stored["version"] == SCORING_VERSION).all()
    assert set(stored.loc[stored["model"] == "latecomer", "late"]) == {True}
    assert set(stored.loc[stored["model"] != "latecomer", "late"]) == {False}

    for day in (days[0], days[-1]):
        today = stored[stored["day"] == day].pivot(index="model", columns="metric", values="value")
        expected = _expected(world, day)
        for metric in ("corr", "mmc", "bmc", "fnc"):
            np.testing.assert_allclose(
                today[metric].sort_index(), expected[metric].sort_index(), atol=TOL
            )

    with transaction(world.sessions) as session:
        meta = session.scalar(select(MetaModel).where(MetaModel.round_id == world.round_id))
        assert meta is not None and meta.weighting == "equal"
        assert len(meta.weights) == 4  # the on-time submissions, not the latecomer
        assert meta.storage_key.startswith(OPERATOR_PREFIX)
        recorded = session.scalars(
            select(RoundTargets.storage_key).where(RoundTargets.round_id == world.round_id)
        ).all()
        assert len(recorded) == days[-1]
        assert all(key.startswith(OPERATOR_PREFIX) for key in recorded)


def test_similarity_is_measured_against_the_on_time_submissions(world: World) -> None:
    source = FeedTargets(market_feed())
    score(world, source)
    day0 = (
        stored_scores(world)
        .query("day == 0")
        .pivot(index="model", columns="metric", values="value")
    )
    frame = pd.DataFrame(world.predictions)
    gauss = nt.gaussian(nt.tie_kept_rank(frame))
    corr = gauss.corr()
    on_time = [name for name in frame.columns if name not in world.late]
    for name in frame.columns:
        others = [other for other in on_time if other != name]
        assert day0.loc[name, "max_corr_others"] == pytest.approx(corr.loc[name, others].max())
        assert day0.loc[name, "mean_corr_others"] == pytest.approx(corr.loc[name, others].mean())
    assert day0.loc["alice_a", "max_corr_others"] > 0.99  # alice_b is a copy of it


def test_the_final_day_then_replay_reproduces_every_number(world: World) -> None:
    source = FeedTargets(market_feed())
    world.clock.advance(40 * DAY)
    score(world, source)
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert days_recorded(session, round_) == source.horizon == 20
        assert replay_round(session, world.clock, world.storage, round_) == []
        RoundLifecycle(None, world.clock).resolve(session, round_)
    stored = stored_scores(world)
    assert len(stored) == 5 * (20 * 4 + 3)  # 5 models × (20 days × 4 metrics + 3 at day 0)

    # tampering with a stored score or a recorded input is found
    with transaction(world.sessions) as session:
        row = session.scalars(
            select(RoundScore).where(RoundScore.metric == "corr", RoundScore.day == 20)
        ).first()
        assert row is not None
        row.value = (row.value or 0.0) + 1e-6
        round_ = session.get_one(Round, world.round_id)
        differences = replay_round(session, world.clock, world.storage, round_)
        assert [(d.metric, d.day) for d in differences] == [("corr", 20)]
        session.rollback()
    with transaction(world.sessions) as session:
        key = session.scalar(select(RoundTargets.storage_key).where(RoundTargets.day == 3))
        assert key is not None
        world.storage.write(key, b"not the recorded targets")
        round_ = session.get_one(Round, world.round_id)
        with pytest.raises(Exception, match="checksum"):
            replay_round(session, world.clock, world.storage, round_)


class Crash(Exception):  # noqa: N818
    """The process dying at this point."""


def test_a_pass_that_dies_before_its_commit_is_completed_by_the_next(world: World) -> None:
    """A scoring pass dies after writing the meta model and the days' targets, before its rows
    commit: nothing is recorded, the files left behind name no row, and the next pass stores
    every row with files matching their checksums, reproduced exactly by a replay."""
    source = FeedTargets(market_feed())
    world.clock.advance(5 * DAY)
    with pytest.raises(Crash), transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert score_round(session, world.clock, world.storage, round_, source) is not None
        raise Crash  # after the files are written, before the commit
    with transaction(world.sessions) as session:
        for table in (MetaModel, RoundTargets, RoundScore):
            assert session.scalars(select(table)).all() == []

    assert score(world, source) is not None  # the next tick
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        files = [*session.scalars(select(MetaModel)), *session.scalars(select(RoundTargets))]
        assert len(files) == 1 + days_recorded(session, round_)
        for row in files:
            content = stored_bytes(world.storage, row.storage_key)
            assert hashlib.sha256(content).hexdigest() == row.sha256
        assert replay_round(session, world.clock, world.storage, round_) == []
        days = days_recorded(session, round_)
    assert days > 0
    assert len(stored_scores(world)) == 5 * (days * 4 + 3)  # 4 metrics a day, 3 at day 0


def test_only_scoring_rounds_are_scored(world: World) -> None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        world.clock.advance(40 * DAY)
        score_round(session, world.clock, world.storage, round_, FeedTargets(market_feed()))
        RoundLifecycle(None, world.clock).resolve(session, round_)
        assert round_.status is RoundStatus.RESOLVED
        assert (
            score_round(session, world.clock, world.storage, round_, FeedTargets(market_feed()))
            is None
        )


def test_targets_never_sit_in_the_published_files(world: World) -> None:
    """The live file carries features only; targets exist only under the operator prefix."""
    assert "target" not in world.live.columns
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        world.clock.advance(10 * DAY)
        score_round(session, world.clock, world.storage, round_, FeedTargets(market_feed()))
    published = [p for p in (world.storage.root / "v1").iterdir()]
    for path in published:
        frame = pd.read_parquet(io.BytesIO(path.read_bytes()))
        assert not {"target", "residual_return"} & set(frame.columns)


def test_a_2017_rules_tournament_scores_logloss_on_the_binary_target(world: World) -> None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        round_.tournament.rules = Rules.RULES2017
    world.clock.advance(8 * DAY)
    score(world, FeedTargets(market_feed()))
    stored = stored_scores(world)
    assert set(stored["metric"]) == {
        "corr",
        "logloss",
        "cwmm",
        "max_corr_others",
        "mean_corr_others",
        "originality_2017",
    }
    day = int(stored["day"].max())
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert round_.market_date is not None
        era = market_feed().live_era(
            round_.number, round_.live_era, pd.Timestamp(round_.market_date)
        )
    residual = market_feed().targets(era, day)["residual_return"].astype(np.float64)
    binary = (residual > residual.median()).astype(int)
    frame = pd.DataFrame(world.predictions).reindex(binary.index)
    inside = [name for name in frame.columns if frame[name].between(1e-6, 1 - 1e-6).all()]
    assert "alice_b" not in inside  # its ranks reach 1.0: clipped, not compared
    expected = pd.Series({name: log_loss(binary, frame[name]) for name in inside})
    today = stored[(stored["day"] == day) & (stored["metric"] == "logloss")].set_index("model")
    assert np.isfinite(today.loc["alice_b", "value"])
    today = today.loc[inside]
    np.testing.assert_allclose(today["value"].sort_index(), expected.sort_index(), atol=TOL)


def test_later_days_read_the_cached_matrix_and_replay_reads_the_files(world: World) -> None:
    source = FeedTargets(market_feed())
    world.clock.advance(4 * DAY)
    score(world, source)
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        key = session.scalar(
            select(RoundScore.submission_id).where(RoundScore.round_id == round_.id).limit(1)
        )
        file_key = session.get_one(Submission, key).file_key
    cache = f"{OPERATOR_PREFIX}rounds/{world.round_id.hex}/predictions.parquet"
    assert world.storage.exists(cache)
    world.storage.delete(file_key)  # the upload is gone: the daily pass does not need it

    world.clock.advance(3 * DAY)
    assert score(world, source) is not None
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        with pytest.raises(NotFound, match="no stored file at"):
            replay_round(session, world.clock, world.storage, round_)


def test_the_2017_originality_gate_fails_a_copy_from_another_account(world: World) -> None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        round_.tournament.rules = Rules.RULES2017
        copy = session.get_one(Model, world.models["alice_b"])  # alice_b ranks alice_a's values
        copy.account_id = session.get_one(Model, world.models["bob"]).account_id
    score(world, FeedTargets(market_feed()))
    stored = stored_scores(world)
    gate = stored[stored["metric"] == "originality_2017"].set_index("model")["value"]
    # whichever of the pair came second fails; everyone else is original
    assert sorted(gate[["alice_a", "alice_b"]]) == [0.0, 1.0]
    assert (gate.drop(["alice_a", "alice_b"]) == 1.0).all()


def test_fnc_neutralises_against_the_versions_fnc_feature_set(world: World) -> None:
    features = [c for c in world.live.columns if c.startswith("feature_")]
    chosen = features[3:23]
    content = json.dumps({"feature_sets": {"fncv3_features": chosen, "all": features}}).encode()
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        every = round_inputs(session, world.clock, world.storage, round_).features
        key = f"{round_.dataset_version}/features.json"
        world.storage.write(key, content)
        session.add(
            DatasetFile(
                version=round_.dataset_version,
                filename="features.json",
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                storage_key=key,
                published_at=world.clock.now(),
            )
        )
        session.flush()
        inputs = round_inputs(session, world.clock, world.storage, round_)
    live = world.live.set_axis(world.live.index.astype(str)).sort_index()
    assert every.shape[1] == len(features)  # without the set: every live feature
    np.testing.assert_array_equal(inputs.features, live[chosen].to_numpy(np.float64))


def test_bmc_falls_back_to_the_benchmark_models_the_round_published(world: World) -> None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        from_submission = round_inputs(session, world.clock, world.storage, round_).benchmark
        round_.tournament.settings = {}  # no benchmark models named: none submitted
        session.flush()
        assert round_inputs(session, world.clock, world.storage, round_).benchmark is None
        published = world.predictions["bench"].rename("v1_lgbm_ender20").to_frame()
        published.insert(0, "era", round_.live_era)
        buffer = io.BytesIO()
        published.to_parquet(buffer)
        content = buffer.getvalue()
        name = f"live_benchmark_models_{round_.number}.parquet"
        world.storage.write(f"v1/{name}", content)
        session.add(
            DatasetFile(
                version="v1",
                filename=name,
                size=len(content),
                sha256=hashlib.sha256(content).hexdigest(),
                storage_key=f"v1/{name}",
                published_at=world.clock.now(),
            )
        )
        session.flush()
        from_file = round_inputs(session, world.clock, world.storage, round_).benchmark
    assert from_submission is not None and from_file is not None
    np.testing.assert_allclose(from_file, from_submission)


def test_score_rows_are_stored_exactly_as_a_core_insert_stores_them(world: World) -> None:
    assert score(world, FeedTargets(market_feed())) is not None
    raw = text(
        "SELECT round_id, model_id, submission_id, metric, day, value, late, scoring_version,"
        " computed_at FROM round_scores WHERE metric = :metric ORDER BY submission_id"
    )
    with transaction(world.sessions) as session:
        written = [tuple(row) for row in session.execute(raw, {"metric": "max_corr_others"})]
        rows = [
            {
                "round_id": score_row.round_id,
                "model_id": score_row.model_id,
                "submission_id": score_row.submission_id,
                "metric": "core",
                "day": score_row.day,
                "value": score_row.value,
                "late": score_row.late,
                "scoring_version": score_row.scoring_version,
                "computed_at": score_row.computed_at,
            }
            for score_row in session.scalars(
                select(RoundScore).where(RoundScore.metric == "max_corr_others")
            )
        ]
        assert written and len(rows) == len(written)
        session.execute(insert(SCORES), rows)
        core = [tuple(row) for row in session.execute(raw, {"metric": "core"})]
        session.rollback()
    assert [row[:3] + row[4:] for row in core] == [row[:3] + row[4:] for row in written]


def test_score_rows_take_time_ordered_ids(world: World) -> None:
    assert score(world, FeedTargets(market_feed())) is not None
    with transaction(world.sessions) as session:
        ids = session.scalars(select(RoundScore.id)).all()
    assert ids and all(id_.version == 7 for id_ in ids)
