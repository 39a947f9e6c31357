"""Opening rounds with a freshly keyed live era, and reading them."""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.benchmark import BenchmarkModels, train_benchmark_models
from crowdquant.data.config import BenchmarkConfig, DatasetConfig, ExampleModelConfig
from crowdquant.data.feed import FeedError
from crowdquant.data.pipeline import build_dataset
from crowdquant.db.models import Cadence, DatasetFile, Round, RoundStatus, Rules, Tournament
from crowdquant.db.session import transaction
from crowdquant.payouts import ClassicRule, rule_from_data, rule_to_data
from crowdquant.storage import LocalStorage, StorageError
from crowdquant.storage.interface import Content, StoredFile
from crowdquant.tournament.calendar import RoundTimes, round_times, schedule_for
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.rounds import (
    EarlyPublication,
    FeedPublisher,
    LivePublisher,
    NoRoundDue,
    PublishedLive,
    PublishFailed,
    RoundNotFound,
    RoundScheduleError,
    current_round,
    first_open_round,
    get_round,
    is_open,
    list_rounds,
    newest_rounds,
    open_round,
    open_round_now,
    publish_early,
    rounds_by_id,
    shift_weeks,
)
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from .live_market import KEYS, TUESDAY_NOON, local_storage, market_feed, read_parquet, stored_bytes

DAY, HOUR = timedelta(days=1), timedelta(hours=1)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(TUESDAY_NOON + timedelta(minutes=5))


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return local_storage(tmp_path / "files")


@pytest.fixture
def publisher(storage: LocalStorage) -> FeedPublisher:
    return FeedPublisher(market_feed(), storage)


def new_tournament(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    number: int = 8,
    cadence: Cadence = Cadence.DAILY,
    version: str = "v1",
) -> Tournament:
    with transaction(sessions) as session:
        return create_tournament(
            session, clock, number, f"t{number}", Rules.CLASSIC, cadence, version
        )


def open_now(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: LivePublisher, number: int = 8
) -> Round:
    with transaction(sessions) as session:
        return open_round(session, clock, get_tournament(session, number), publisher)


def test_rounds_are_numbered_per_tournament_and_follow_the_calendar(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock)
    first = open_now(sessions, clock, publisher)
    expected = round_times(schedule_for(Cadence.DAILY), TUESDAY_NOON)
    assert (first.number, first.status, first.dataset_version) == (1, RoundStatus.OPEN, "v1")
    assert (first.open_time, first.close_staking_time, first.close_time, first.resolve_time) == (
        expected.open_time,
        expected.close_staking_time,
        expected.close_time,
        expected.resolve_time,
    )
    assert first.live_era == "0004"  # as a dataset build labels that week (test below)
    assert open_now(sessions, clock, publisher).id == first.id  # same window: same round

    clock.advance(DAY)  # Wednesday 12:05
    second = open_now(sessions, clock, publisher)
    clock.advance(3 * DAY)  # Saturday: the era is Friday's, the last day of week 54
    third = open_now(sessions, clock, publisher)
    assert [second.number, third.number] == [2, 3]
    assert [second.live_era, third.live_era] == ["0004", "0004"]
    assert third.close_time - third.open_time == timedelta(days=2, hours=1)
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        assert [r.number for r in list_rounds(session, tournament)] == [1, 2, 3]
        assert [r.number for r in newest_rounds(session, tournament)] == [3, 2, 1]
        assert [r.number for r in newest_rounds(session, tournament, limit=2)] == [3, 2]
        opened = [RoundStatus.OPEN]
        assert [r.number for r in newest_rounds(session, tournament, opened, 1)] == [3]
        assert newest_rounds(session, tournament, [RoundStatus.RESOLVED], 2) == []
        latest = current_round(session, tournament)
        assert latest is not None and latest.number == 3
        assert get_round(session, tournament, 2).id == second.id
        with pytest.raises(RoundNotFound, match="no round 4"):
            get_round(session, tournament, 4)


def test_outside_a_window_no_round_is_due(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock)
    clock.advance(HOUR)  # Tuesday 13:05: closed
    with pytest.raises(NoRoundDue, match=r"next opens at 2001-01-10 12:00"):
        open_now(sessions, clock, publisher)
    with transaction(sessions) as session:
        assert session.scalars(select(Round)).all() == []


def test_explicit_times_must_contain_now_and_follow_the_last_round(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock)
    first = open_now(sessions, clock, publisher)
    overlapping = RoundTimes(
        open_time=clock.now(),
        close_staking_time=clock.now() + HOUR,
        close_time=clock.now() + HOUR,
        era_date=date(2001, 1, 8),
        resolve_time=clock.now() + 30 * DAY,
    )
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        with pytest.raises(RoundScheduleError, match="round 1 of tournament 8 is open until"):
            open_round(session, clock, tournament, publisher, times=overlapping)
        clock.set(first.close_time)
        with pytest.raises(RoundScheduleError, match="cannot open at"):
            open_round(session, clock, tournament, publisher, times=overlapping)
        later = RoundTimes(
            open_time=first.close_time,
            close_staking_time=first.close_time + HOUR,
            close_time=first.close_time + 2 * HOUR,
            era_date=date(2001, 1, 8),
            resolve_time=first.close_time + 30 * DAY,
        )
        extra = open_round(session, clock, tournament, publisher, times=later)
        assert (extra.number, extra.close_time) == (2, later.close_time)


class Counted:
    """A publisher that counts its publications."""

    def __init__(self, publisher: LivePublisher) -> None:
        self.publisher, self.calls = publisher, 0

    def publish(self, tournament: Tournament, round_number: int, era_date: date) -> PublishedLive:
        self.calls += 1
        return self.publisher.publish(tournament, round_number, era_date)


def test_a_live_era_published_early_opens_its_own_round_and_no_other(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock)
    counted = Counted(publisher)
    today = round_times(schedule_for(Cadence.DAILY), TUESDAY_NOON)
    tomorrow = round_times(schedule_for(Cadence.DAILY), TUESDAY_NOON + DAY)
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        early = publish_early(session, tournament, counted, today)
        assert early is not None and (early.number, counted.calls) == (1, 1)
        for other in (  # another round, timetable or version: published afresh
            EarlyPublication(2, early.version, today, early.live),
            EarlyPublication(1, early.version, tomorrow, early.live),
            EarlyPublication(1, "v0", today, early.live),
        ):
            with session.begin_nested() as attempt:
                open_round(session, clock, tournament, counted, times=today, early=other)
                attempt.rollback()
        assert counted.calls == 4
        opened = open_round(session, clock, tournament, counted, times=today, early=early)
        assert counted.calls == 4 and opened.number == 1
        served = session.scalars(
            select(DatasetFile).where(DatasetFile.filename == "live.parquet")
        ).one()
        assert served.storage_key == early.live.storage_key
        assert publish_early(session, tournament, counted, today) is None  # open already
        overlapping = replace(tomorrow, open_time=clock.now())
        with pytest.raises(RoundScheduleError, match="round 1 of tournament 8 is open until"):
            publish_early(session, tournament, counted, overlapping)  # as `open_round` refuses
        assert counted.calls == 4
        again = publisher.publish(tournament, 1, today.era_date)  # by another opener, say
        assert (again.storage_key, again.sha256) == (early.live.storage_key, early.live.sha256)


def test_a_round_closed_by_hand_lets_the_next_open_at_once_and_the_calendar_resumes(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock)
    first = open_now(sessions, clock, publisher)  # Tuesday's calendar round, until 13:00
    clock.advance(timedelta(minutes=10))
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        with pytest.raises(RoundScheduleError, match="round 1 of tournament 8 is open until"):
            open_round_now(session, clock, tournament, publisher)
        assert RoundLifecycle(None, clock).close(session, get_round(session, tournament, 1))
    with transaction(sessions) as session:
        by_hand = open_round_now(session, clock, get_tournament(session, 8), publisher)
    assert (by_hand.number, by_hand.open_time) == (2, clock.now())
    assert by_hand.open_time < first.close_time
    with transaction(sessions) as session:
        tournament = get_tournament(session, 8)
        # the calendar's window that opened before the round by hand stays shut
        with pytest.raises(RoundScheduleError, match="round 2 of tournament 8 is open until"):
            open_round(session, clock, tournament, publisher)
        assert RoundLifecycle(None, clock).close(session, get_round(session, tournament, 2))
        with pytest.raises(RoundScheduleError, match="round 2 of tournament 8 opened at"):
            open_round(session, clock, tournament, publisher)
    clock.advance(DAY)  # Wednesday 12:15: the calendar goes on
    third = open_now(sessions, clock, publisher)
    assert (third.number, third.open_time) == (3, first.open_time + DAY)


def test_the_live_file_has_the_published_columns_and_fresh_ids(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    publisher: FeedPublisher,
    storage: LocalStorage,
) -> None:
    new_tournament(sessions, clock)
    first = open_now(sessions, clock, publisher)
    clock.advance(DAY)
    second = open_now(sessions, clock, publisher)

    one, two = (
        read_parquet(storage, "v1/live_1.parquet"),
        read_parquet(storage, "v1/live_2.parquet"),
    )
    assert list(one.columns) == ["era", "data_type", *market_feed().encoder.names]
    assert one.index.name == "id" and one.index.is_unique and len(one) > 20
    assert (one["era"] == first.live_era).all() and (one["data_type"] == "live").all()
    assert set(one.index).isdisjoint(two.index)  # every round keys its ids afresh
    assert second.live_era == "0004"

    with transaction(sessions) as session:
        files = {f.filename: f for f in session.scalars(select(DatasetFile))}
    assert sorted(files) == ["live.parquet", "live_1.parquet", "live_2.parquet"]
    # the version's live.parquet is the current round's own file, never a copy overwritten
    assert read_parquet(storage, files["live.parquet"].storage_key).equals(two)
    assert not storage.exists("v1/live.parquet")
    for name, key in [
        ("live_1.parquet", "v1/live_1.parquet"),
        ("live.parquet", "v1/live_2.parquet"),
    ]:
        content = stored_bytes(storage, key)
        assert (files[name].version, files[name].storage_key) == ("v1", key)
        assert files[name].size == len(content)
    assert files["live.parquet"].sha256 == files["live_2.parquet"].sha256
    assert files["live.parquet"].published_at == clock.now()
    # publishing is deterministic: a retried round writes the very same bytes
    with transaction(sessions) as session:
        again = publisher.publish(get_tournament(session, 8), 1, date(2001, 1, 8))
    assert again.sha256 == files["live_1.parquet"].sha256


class Crash(Exception):  # noqa: N818
    """The process dying at this point."""


def served_live_file(sessions: sessionmaker[Session], storage: LocalStorage) -> pd.DataFrame:
    """The version's live.parquet as a download finds it: through its committed row, whose
    checksum the stored bytes must match."""
    with transaction(sessions) as session:
        row = session.scalars(
            select(DatasetFile).where(DatasetFile.filename == "live.parquet")
        ).one()
        key, sha256 = row.storage_key, row.sha256
    assert hashlib.sha256(stored_bytes(storage, key)).hexdigest() == sha256
    return read_parquet(storage, key)


def test_a_crash_between_the_live_file_and_the_commit_leaves_the_current_round_served(
    sessions: sessionmaker[Session],
    clock: ManualClock,
    publisher: FeedPublisher,
    storage: LocalStorage,
) -> None:
    """Round 2's opening dies after its live file is written, before its rows commit: round 1
    is still the current round and live.parquet still serves its ids, matching its row; the
    next opening completes round 2."""
    new_tournament(sessions, clock)
    first = open_now(sessions, clock, publisher)
    one = read_parquet(storage, "v1/live_1.parquet")
    clock.advance(DAY)
    with pytest.raises(Crash), transaction(sessions) as session:
        open_round(session, clock, get_tournament(session, 8), publisher)
        raise Crash  # after the file is written, before the commit
    with transaction(sessions) as session:
        latest = current_round(session, get_tournament(session, 8))
        assert latest is not None and latest.number == first.number
    assert served_live_file(sessions, storage).equals(one)

    second = open_now(sessions, clock, publisher)  # the next tick
    assert second.number == 2
    assert served_live_file(sessions, storage).equals(read_parquet(storage, "v1/live_2.parquet"))
    assert not served_live_file(sessions, storage).index.isin(one.index).any()


def test_a_replayed_market_and_a_holiday(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage
) -> None:
    tournament = new_tournament(sessions, clock)
    replay = FeedPublisher(market_feed(), storage, market_date=shift_weeks(1), prefix="data/")
    published = replay.publish(tournament, 5, date(2001, 1, 15))  # → Monday 8 January
    assert published.market_date == date(2001, 1, 8)
    assert published.storage_key == "data/v1/live_5.parquet"
    assert published.current_name == "live.parquet"
    sunday = replay.publish(tournament, 6, date(2001, 1, 21))  # → Sunday 14th: the Friday
    assert (sunday.market_date, sunday.live_era) == (date(2001, 1, 12), "0004")
    frame = read_parquet(storage, sunday.storage_key)
    assert published.rows is not None and len(frame) == sunday.rows


class FailingStorage(LocalStorage):
    """Fails when asked to write a round's live file."""

    def write(self, key: str, content: Content, *, max_bytes: int | None = None) -> StoredFile:
        if key.endswith("/live_1.parquet"):
            raise StorageError("the disk is full")
        return super().write(key, content, max_bytes=max_bytes)


class UnavailableMarket:
    def publish(self, tournament: Tournament, round_number: int, era_date: date) -> PublishedLive:
        raise FeedError("the market has not closed yet")


def test_a_failing_publisher_leaves_no_round_and_no_file(
    sessions: sessionmaker[Session], clock: ManualClock, tmp_path: Path
) -> None:
    new_tournament(sessions, clock)
    failing = FailingStorage(tmp_path / "files", fsync=False)
    with pytest.raises(PublishFailed, match=r"round 1 of tournament 8.*the disk is full"):
        open_now(sessions, clock, FeedPublisher(market_feed(), failing))
    with pytest.raises(PublishFailed, match="FeedError: the market has not closed yet"):
        open_now(sessions, clock, UnavailableMarket())
    assert failing.list() == []
    with transaction(sessions) as session:
        assert session.scalars(select(Round)).all() == []
        assert session.scalars(select(DatasetFile)).all() == []
    healed = open_now(sessions, clock, FeedPublisher(market_feed(), local_storage(failing.root)))
    assert healed.number == 1
    assert [f.key for f in failing.list()] == ["v1/live_1.parquet"]


def test_the_header_shows_the_open_round_of_the_lowest_numbered_tournament(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock, 8)
    new_tournament(sessions, clock, 9, version="v2")
    with transaction(sessions) as session:
        assert first_open_round(session) is None
    nines = open_now(sessions, clock, publisher, 9)
    with transaction(sessions) as session:
        found = first_open_round(session)
        assert found is not None and (found.tournament.number, found.id) == (9, nines.id)
    eights = open_now(sessions, clock, publisher, 8)
    with transaction(sessions) as session:
        found = first_open_round(session)
        assert found is not None and (found.tournament.number, found.id) == (8, eights.id)
        found.status = RoundStatus.CLOSED
    with transaction(sessions) as session:
        found = first_open_round(session)
        assert found is not None and found.id == nines.id
        missing = uuid.uuid4()
        by_id = rounds_by_id(session, [eights.id, nines.id, missing])
        assert {key: row.number for key, row in by_id.items()} == {eights.id: 1, nines.id: 1}


def test_two_tournaments_cannot_publish_into_one_version(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock, 8)
    new_tournament(sessions, clock, 9)
    open_now(sessions, clock, publisher, 8)
    with pytest.raises(RoundScheduleError, match=r"tournament 8 already publishes.*'v1'"):
        open_now(sessions, clock, publisher, 9)


def test_a_round_is_open_from_its_open_time_until_its_close_time() -> None:
    start = TUESDAY_NOON
    round_ = Round(
        number=1,
        status=RoundStatus.OPEN,
        open_time=start,
        close_staking_time=start + HOUR,
        close_time=start + HOUR,
        resolve_time=start + 31 * DAY,
    )
    assert is_open(round_, start) and is_open(round_, start + HOUR - timedelta(seconds=1))
    assert not is_open(round_, start + HOUR) and not is_open(round_, start - HOUR)
    round_.status = RoundStatus.CLOSED
    assert not is_open(round_, start)


def test_live_eras_continue_the_era_labels_of_a_dataset_build(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    """A version built on a Monday shows Friday's era live; a round on that Friday shows the
    same label, and Monday's round the next week's."""
    tournament = new_tournament(sessions, clock)
    friday, monday = date(2001, 6, 29), date(2001, 7, 2)
    config = DatasetConfig(example_model=ExampleModelConfig(max_iter=2))
    panel = market_feed().market.panel_through(pd.Timestamp(monday))
    (label,) = build_dataset(panel, config, KEYS).frames["live"]["era"].unique()
    assert publisher.publish(tournament, 1, friday).live_era == label == "0028"
    assert publisher.publish(tournament, 2, monday).live_era == "0029"


def test_a_round_records_the_payout_rule_in_force_when_it_opens(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    with transaction(sessions) as session:
        create_tournament(
            session, clock, 8, "t8", Rules.CLASSIC, Cadence.DAILY, "v1",
            {"payout_rule": {"clip": "0.1", "mmc_multiplier": "1"}},
        )  # fmt: skip
    first = open_now(sessions, clock, publisher)
    assert first.payout_rule == rule_to_data(
        ClassicRule(clip=Decimal("0.1"), mmc_multiplier=Decimal(1))
    )
    with transaction(sessions) as session:  # the operator changes the rule for later rounds
        tournament = get_tournament(session, 8)
        tournament.settings = {"payout_rule": {"clip": "0.02"}}
    with transaction(sessions) as session:
        recorded = session.get_one(Round, first.id).payout_rule
    assert rule_from_data(recorded) == ClassicRule(clip=Decimal("0.1"), mmc_multiplier=Decimal(1))


def test_a_bad_payout_rule_setting_refuses_the_opening_and_records_nothing(
    sessions: sessionmaker[Session], clock: ManualClock, publisher: FeedPublisher
) -> None:
    new_tournament(sessions, clock)
    with transaction(sessions) as session:
        get_tournament(session, 8).settings = {"payout_rule": {"clip": "2"}}
    with pytest.raises(RoundScheduleError, match=r"payout_rule setting: .*clip"):
        open_now(sessions, clock, publisher)
    with transaction(sessions) as session:
        assert session.scalar(select(Round.id)) is None


def _benchmark_models() -> BenchmarkModels:
    names = market_feed().encoder.names
    rng = np.random.default_rng(0)
    train = pd.DataFrame(rng.integers(0, 5, (400, len(names))).astype(np.int8), columns=names)
    train.insert(0, "era", np.repeat(["0001", "0002", "0003", "0004"], 100))
    train["target_ender_20"] = train[names[0]] + rng.normal(0, 1, 400)
    config = BenchmarkConfig(n_estimators=5)
    return train_benchmark_models(train, names, ["target_ender_20"], config)[0]


def test_each_round_publishes_its_benchmark_models_predictions(
    sessions: sessionmaker[Session], clock: ManualClock, storage: LocalStorage
) -> None:
    models = _benchmark_models()
    publisher = FeedPublisher(market_feed(), storage, benchmarks=models)
    new_tournament(sessions, clock)
    open_now(sessions, clock, publisher)
    clock.advance(DAY)
    open_now(sessions, clock, publisher)
    with transaction(sessions) as session:
        files = {f.filename: f for f in session.scalars(select(DatasetFile))}
    assert "live_benchmark_models_1.parquet" in files
    current = files["live_benchmark_models.parquet"]
    assert current.storage_key == "v1/live_benchmark_models_2.parquet"
    assert current.sha256 == files["live_benchmark_models_2.parquet"].sha256
    live = read_parquet(storage, "v1/live_2.parquet")
    published = read_parquet(storage, current.storage_key)
    assert list(published.columns) == ["era", "v1_lgbm_ender20"]
    assert published.index.equals(live.index)
    expected = models.predict(live)["target_ender_20"]
    np.testing.assert_allclose(published["v1_lgbm_ender20"], expected)
