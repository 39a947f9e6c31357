"""A tournament's scores end to end: participants use the real numerapi client for two
rounds on the synthetic market, the clock runs through the scoring days, and the stored
scores (and what numerapi reads back) match numerai-tools computed here from the market."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numerapi
import numerapi.base_api
import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from numerai_tools import scoring as nt
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import ApiScope, Cadence, Round, RoundScore, RoundStatus, Rules
from crowdquant.db.session import transaction
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.calendar import RoundTimes
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round, shift_weeks
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.scoring import FeedTargets, replay_round
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from ..tournament.live_market import MONDAY, local_storage
from ..tournament.scored_round import market_feed
from .server import serve

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
PARTICIPANTS = ("alice", "bob", "carol")
TOL = 1e-9


@dataclass
class Tournament:
    url: str
    clock: ManualClock
    sessions: sessionmaker[Session]
    storage: LocalStorage
    publisher: FeedPublisher
    scheduler: Scheduler
    keys: dict[str, tuple[str, str]]  # participant → (public id, secret)
    models: dict[str, str]  # participant → model id


def _previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() > 4:
        day -= timedelta(days=1)
    return day


@pytest.fixture
def tournament(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[Tournament]:
    clock = ManualClock(datetime.now(UTC).replace(microsecond=0))
    storage = local_storage(tmp_path / "files")
    # The live eras replay the synthetic market a whole number of weeks behind the calendar.
    weeks = (_previous_weekday(clock.now().date()) - MONDAY.date()).days // 7
    feed = market_feed()
    publisher = FeedPublisher(feed, storage, market_date=shift_weeks(weeks))
    scheduler = Scheduler(
        sessions,
        clock,
        # rounds are opened by the test, at the times it chooses: no publisher
        {8: TournamentRuntime(targets=FeedTargets(feed, market_date=shift_weeks(weeks)))},
        storage=storage,
    )
    keys, models = {}, {}
    with transaction(sessions) as session:
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        for name in PARTICIPANTS:
            account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            models[name] = str(create_model(session, clock, account, 8, f"{name}_model").id)
            key = create_api_key(session, clock, account, "k", [ApiScope.READ, ApiScope.UPLOAD])
            keys[name] = (key.public_id, key.secret)
    app = create_app(
        Settings(mode="local", home=tmp_path / "home"),
        clock=clock,
        sessions=sessions,
        storage=storage,
    )
    previous = numerapi.base_api.API_TOURNAMENT_URL
    with serve(app) as url:
        numerapi.base_api.API_TOURNAMENT_URL = url
        try:
            yield Tournament(url, clock, sessions, storage, publisher, scheduler, keys, models)
        finally:
            numerapi.base_api.API_TOURNAMENT_URL = previous


def _open_round(t: Tournament) -> int:
    now = t.clock.now()
    times = RoundTimes(
        open_time=now - timedelta(minutes=5),
        close_staking_time=now + timedelta(hours=1),
        close_time=now + timedelta(hours=1),
        era_date=_previous_weekday(now.date()),
        resolve_time=now + timedelta(days=35),
    )
    with transaction(t.sessions) as session:
        return open_round(
            session, t.clock, get_tournament(session, 8), t.publisher, times=times
        ).number


def _predict(live: pd.DataFrame, participant: str) -> pd.DataFrame:
    """Each participant's own model: a feature, its opposite, or noise."""
    features = [c for c in live.columns if c not in ("era", "data_type")]
    rng = np.random.default_rng(PARTICIPANTS.index(participant))
    if participant == "alice":
        values = live[features[0]] + rng.uniform(0, 0.01, len(live))
    elif participant == "bob":
        values = -live[features[1]] + rng.uniform(0, 0.01, len(live))
    else:
        values = pd.Series(rng.uniform(0, 1, len(live)), index=live.index)
    ranked = values.rank(pct=True)
    return pd.DataFrame({"id": live.index, "prediction": ranked.to_numpy()})


def _play_round(t: Tournament, tmp_path: Path) -> tuple[int, pd.DataFrame, pd.DataFrame]:
    """Open a round; each participant downloads the live file and uploads with numerapi."""
    number = _open_round(t)
    uploads = {}
    live = pd.DataFrame()
    for name in PARTICIPANTS:
        napi = numerapi.NumerAPI(*t.keys[name])
        assert napi.get_current_round() == number
        path = tmp_path / f"{name}_{number}" / "live.parquet"
        napi.download_dataset("v1/live.parquet", str(path))
        live = pd.read_parquet(path)
        predictions = _predict(live, name)
        napi.upload_predictions(model_id=t.models[name], df=predictions)
        uploads[name] = predictions.set_index("id")["prediction"]
    return number, pd.DataFrame(uploads), live


def _expected(
    t: Tournament, number: int, day: int, frame: pd.DataFrame, live: pd.DataFrame
) -> pd.DataFrame:
    """A day's scores from numerai-tools, the targets computed here from the market."""
    with transaction(t.sessions) as session:
        round_ = session.scalars(select(Round).where(Round.number == number)).one()
        assert round_.market_date is not None
        era = market_feed().live_era(number, round_.live_era, pd.Timestamp(round_.market_date))
    # float64 as the server scores them: numerai-tools centres float32 targets in float32
    targets = market_feed().targets(era, day)["target"].astype(np.float64)
    meta = nt.stake_weight(
        nt.gaussian(nt.tie_kept_rank(frame)), pd.Series(1.0, index=frame.columns)
    )
    features = live.drop(columns=["era", "data_type"]).astype(float)
    return pd.DataFrame(
        {
            "corr": nt.numerai_corr(frame, targets),
            "mmc": nt.correlation_contribution(frame, meta, targets),
            "fnc": nt.feature_neutral_corr(frame, features, targets),
        }
    )


def _stored(t: Tournament, number: int, day: int) -> pd.DataFrame:
    names = {model_id: name for name, model_id in t.models.items()}
    with transaction(t.sessions) as session:
        rows = session.execute(
            select(RoundScore.model_id, RoundScore.metric, RoundScore.value)
            .join(Round, Round.id == RoundScore.round_id)
            .where(Round.number == number, RoundScore.day == day)
        ).all()
    frame = pd.DataFrame(rows, columns=["model", "metric", "value"])
    frame["model"] = frame["model"].map(lambda model_id: names[str(model_id)])
    return frame.pivot(index="model", columns="metric", values="value")


def test_two_rounds_scored_day_by_day_and_read_back_with_numerapi(
    tournament: Tournament, tmp_path: Path
) -> None:
    t = tournament
    played = {}
    for _ in range(2):
        number, frame, live = _play_round(t, tmp_path)
        played[number] = (frame, live)
        t.clock.advance(timedelta(hours=2))
        happened = [str(event) for event in t.scheduler.tick()]
        assert f"round {number} of tournament 8 closed" in happened
        t.clock.advance(timedelta(days=1))

    # A week on: the first days of both rounds are scored, neither is resolved.
    t.clock.advance(timedelta(days=7))
    t.scheduler.tick()
    napi = numerapi.NumerAPI()
    alice = napi.submission_scores(t.models["alice"], display_name="corr")
    assert {score["roundNumber"] for score in alice} == {1, 2}
    assert all(not score["resolved"] for score in alice)
    day = max(score["day"] for score in alice if score["roundNumber"] == 1)
    assert 1 <= day < 20

    # Past the resolve times: every day scored, both rounds resolved.
    t.clock.advance(timedelta(days=40))
    happened = [str(event) for event in t.scheduler.tick()]
    assert "round 1 of tournament 8 resolved" in happened
    assert "round 2 of tournament 8 resolved" in happened

    for number, (frame, live) in played.items():
        for day in (1, 20):
            stored = _stored(t, number, day)
            expected = _expected(t, number, day, frame, live)
            for metric in ("corr", "mmc", "fnc"):
                np.testing.assert_allclose(
                    stored[metric].sort_index(),
                    expected[metric].sort_index(),
                    atol=TOL,
                    err_msg=f"round {number} day {day} {metric}",
                )
        with transaction(t.sessions) as session:
            round_ = session.scalars(select(Round).where(Round.number == number)).one()
            assert round_.status is RoundStatus.RESOLVED
            assert replay_round(session, t.clock, t.storage, round_) == []

    # numerapi reads the same numbers back
    finals = {n: _stored(t, n, 20) for n in played}
    scores = napi.submission_scores(t.models["bob"], display_name="corr", day=20)
    assert sorted(score["roundNumber"] for score in scores) == [1, 2]
    for score in scores:
        assert score["value"] == pytest.approx(finals[score["roundNumber"]].loc["bob", "corr"])
        assert score["resolved"] is True

    board = napi.get_leaderboard()
    reputation = {
        name: np.mean([finals[n].loc[name, "corr"] for n in played]) for name in PARTICIPANTS
    }
    assert [row["username"] for row in board] == [
        f"{name}_model" for name in sorted(PARTICIPANTS, key=lambda n: -reputation[n])
    ]
    for row in board:
        name = row["username"].removesuffix("_model")
        assert row["corr20Rep"] == pytest.approx(reputation[name])
        assert row["nmrStaked"] == 0

    with pytest.warns(DeprecationWarning):  # numerapi's own deprecation of this call
        performances = napi.round_model_performances_v2(t.models["carol"])
    assert [p["roundNumber"] for p in performances] == [2, 1]
    final_corr = [
        s["value"] for s in performances[1]["submissionScores"] if s["displayName"] == "corr"
    ]
    assert final_corr == [pytest.approx(finals[1].loc["carol", "corr"])]
    with pytest.warns(DeprecationWarning):  # the alias by name
        assert napi.round_model_performances("carol_model") == performances
    intra = napi.intra_round_scores(t.models["carol"])
    assert [p["roundNumber"] for p in intra] == [2, 1]
    daily_corr = {
        s["day"]: s["value"]
        for s in intra[1]["intraRoundSubmissionScores"]
        if s["displayName"] == "corr"
    }
    assert set(daily_corr) >= {1, 20}
    assert daily_corr[20] == pytest.approx(finals[1].loc["carol", "corr"])

    today = napi.pipeline_status(t.clock.now().date().isoformat())
    assert today["isScoringDay"] is True
    assert today["startedAt"] is not None and today["scoredAt"] >= today["startedAt"]

    profile = napi.public_user_profile("alice_model")
    assert profile["username"] == "alice_model"
    daily = napi.daily_model_performances("alice_model")
    assert daily and daily[-1]["corrRep"] == pytest.approx(reputation["alice"])

    accounts = napi.get_account_leaderboard()
    assert {row["username"] for row in accounts} == set(PARTICIPANTS)
    uuid.UUID(t.models["alice"])  # ids are opaque UUIDs
