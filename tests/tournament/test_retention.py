"""Retention of submission files and the sweep of orphans, on both backends and local storage.

A model keeps the uploads its rounds are scored by and its newest few; every other file is
deleted and its row marked, still listed, its download refused. Files under the
submissions folder that no row names go once older than the grace period.
"""

from __future__ import annotations

import os
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import Account, Cadence, Model, Round, RoundScore, Rules, Submission
from crowdquant.db.session import transaction
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.retention import (
    Retention,
    SweepCursor,
    Swept,
    sweep_submission_files,
)
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.scheduler import Scheduler
from crowdquant.tournament.scoring import FeedTargets, replay_round
from crowdquant.tournament.submissions import (
    SubmissionPurged,
    list_submissions,
    live_ids_of_round,
    submission_file,
    submit_predictions,
)
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from .live_market import TUESDAY_NOON, local_storage, market_feed
from .scored_round import DAY, World, score
from .scored_round import market_feed as wide_market_feed
from .scored_round import upload as upload_series
from .test_submissions import CHEAP, MINUTE, predictions_csv


class Market:
    """One classic tournament with alice's and bob's models and one open round."""

    def __init__(self, sessions: sessionmaker[Session], root: Path) -> None:
        self.sessions, self.storage = sessions, local_storage(root)
        self.clock = ManualClock(TUESDAY_NOON + 5 * MINUTE)
        with transaction(sessions) as session:
            create_tournament(session, self.clock, 8, "t8", Rules.CLASSIC, Cadence.DAILY, "v1")
            for name in ("alice", "bob"):
                owner = sign_up(
                    session, self.clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP
                )
                create_model(session, self.clock, owner, 8, f"{name}_model")
            publisher = FeedPublisher(market_feed(), self.storage)
            self.round_id = open_round(
                session, self.clock, get_tournament(session, 8), publisher
            ).id

    def upload(self, owner: str, valid: bool = True) -> uuid.UUID:
        """An upload of `owner`'s model, a minute after the last one."""
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, self.round_id)
            ids = live_ids_of_round(self.storage, round_)
            account = session.scalars(select(Account).where(Account.username == owner)).one()
            model = session.scalars(select(Model).where(Model.name == f"{owner}_model")).one()
            data = predictions_csv(ids) if valid else b"id,prediction\nnope,0.5\n"
            submission = submit_predictions(
                session,
                self.clock,
                self.storage,
                account,
                model.id,
                round_,
                "p.csv",
                data,
                live_ids=ids,
            )
        self.clock.advance(MINUTE)
        return submission.id

    def close_and_start_scoring(self) -> None:
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, self.round_id)
            self.clock.set(round_.close_time + MINUTE)
            RoundLifecycle(None, self.clock).close(session, round_)
            RoundLifecycle(None, self.clock).start_scoring(session, round_)

    def sweep(self, retention: Retention) -> Swept:
        return sweep_submission_files(self.sessions, self.storage, datetime.now(UTC), retention)

    def kept(self) -> dict[uuid.UUID, bool]:
        """Every upload: whether its file is still stored (and its row unmarked)."""
        with transaction(self.sessions) as session:
            rows = session.scalars(select(Submission))
            found = {row.id: (self.storage.exists(row.file_key), row.purged_at) for row in rows}
        for stored, purged_at in found.values():
            assert stored == (purged_at is None)
        return {sub_id: stored for sub_id, (stored, _) in found.items()}


@pytest.fixture
def market(sessions: sessionmaker[Session], tmp_path: Path) -> Market:
    return Market(sessions, tmp_path / "files")


def test_the_uploads_rounds_need_and_the_newest_stay_and_the_rest_are_purged(
    market: Market,
) -> None:
    keep_one = Retention(keep_newest=1)
    first, second_invalid, counting, newest_invalid = (
        market.upload("alice", valid) for valid in (True, False, True, False)
    )
    assert market.sweep(keep_one) == Swept(purged=2, orphans=0)
    assert market.kept() == {
        first: False,
        second_invalid: False,
        counting: True,  # the round (open) is scored by it
        newest_invalid: True,  # alice's newest
    }

    market.close_and_start_scoring()
    late, late_newest = market.upload("alice"), market.upload("alice")
    bob_first_late, bob_newest = market.upload("bob"), market.upload("bob", valid=False)
    assert market.sweep(keep_one) == Swept(purged=2, orphans=0)
    assert market.kept() == {
        first: False,
        second_invalid: False,
        counting: True,  # still scored by it: a late upload never replaces an on-time one
        newest_invalid: False,
        late: False,
        late_newest: True,
        bob_first_late: True,  # bob has no on-time upload: his first valid late one counts
        bob_newest: True,
    }
    assert market.sweep(keep_one) == Swept(purged=0, orphans=0)  # idempotent


def test_an_upload_a_stored_score_names_stays(market: Market) -> None:
    named, other, newest = (market.upload("alice") for _ in range(3))
    with transaction(market.sessions) as session:
        alice_model = session.scalars(select(Model).where(Model.name == "alice_model")).one()
        session.add(  # a score stored while `named` was the one the round was scored by
            RoundScore(
                round_id=market.round_id,
                model_id=alice_model.id,
                submission_id=named,
                metric="corr",
                day=1,
                value=0.1,
                scoring_version="test",
                computed_at=market.clock.now(),
            )
        )
    assert market.sweep(Retention(keep_newest=0)) == Swept(purged=1, orphans=0)
    assert market.kept() == {named: True, other: False, newest: True}


def test_a_purged_upload_is_listed_and_its_download_refused(market: Market) -> None:
    purged, _ = market.upload("alice"), market.upload("alice")
    assert market.sweep(Retention(keep_newest=0)).purged == 1
    with transaction(market.sessions) as session:
        alice = session.scalars(select(Account).where(Account.username == "alice")).one()
        assert [row.id for row in list_submissions(session, alice)][-1] == purged
        with pytest.raises(SubmissionPurged, match="was purged") as refused:
            submission_file(session, market.storage, alice, purged)
    assert refused.value.code == "submission_purged"


def test_a_sweep_purges_at_most_per_tick_files(market: Market) -> None:
    uploads = [market.upload("alice", valid=False) for _ in range(3)]
    bounded = Retention(keep_newest=0, per_tick=2)
    assert market.sweep(bounded).purged == 2
    assert market.sweep(bounded).purged == 1
    assert market.kept() == dict.fromkeys(uploads, False)


def test_each_sweep_looks_at_one_page_of_uploads_and_the_next_goes_on_from_there(
    market: Market,
) -> None:
    alice = [market.upload("alice", valid=False) for _ in range(3)]
    bob_newest = market.upload("bob", valid=False)
    alice_newest = market.upload("alice", valid=False)
    paged, cursor = Retention(keep_newest=1, scan_per_tick=2), SweepCursor()

    def sweep() -> int:
        return sweep_submission_files(
            market.sessions, market.storage, datetime.now(UTC), paged, cursor
        ).purged

    assert [sweep(), sweep(), sweep()] == [2, 1, 0]  # alice's first two; her third; nothing
    assert cursor.upload is None  # past the end: the next sweep starts over
    assert market.kept() == {
        alice[0]: False,
        alice[1]: False,
        alice[2]: False,
        bob_newest: True,
        alice_newest: True,
    }


def test_the_scheduler_carries_its_sweep_on_from_tick_to_tick(market: Market) -> None:
    old = [f"submissions/ab/cd/old{n}.csv" for n in range(3)]
    for key in old:
        market.storage.write(key, b"id,prediction\n")
        _age(market.storage, key, timedelta(days=2))
    clock = ManualClock(datetime.now(UTC))
    scheduler = Scheduler(
        market.sessions, clock, {}, storage=market.storage, retention=Retention(scan_per_tick=1)
    )
    for key in old:  # one file looked at per hourly tick, the next one the hour after
        assert str(scheduler.tick()[0]) == "deleted 1 orphan submission file(s)"
        assert not market.storage.exists(key)
        clock.advance(timedelta(hours=1))


def _age(storage: LocalStorage, key: str, age: timedelta) -> None:
    then = (datetime.now(UTC) - age).timestamp()
    os.utime(storage.root.joinpath(*key.split("/")), (then, then))


def test_the_hourly_tick_deletes_old_orphans_and_keeps_fresh_and_named_files(
    market: Market,
) -> None:
    named = market.upload("alice")
    with transaction(market.sessions) as session:
        named_key = session.get_one(Submission, named).file_key
    _age(market.storage, named_key, timedelta(days=3))
    old, fresh = "submissions/ab/cd/old.csv", "submissions/ab/cd/fresh.csv"
    for key in (old, fresh):
        market.storage.write(key, b"id,prediction\n")
    _age(market.storage, old, timedelta(days=2))

    clock = ManualClock(datetime.now(UTC))
    scheduler = Scheduler(market.sessions, clock, {}, storage=market.storage)
    events = scheduler.tick()  # the sweep comes first; the round's own events follow
    assert str(events[0]) == "deleted 1 orphan submission file(s)"
    assert not market.storage.exists(old)
    assert market.storage.exists(fresh) and market.storage.exists(named_key)
    clock.advance(timedelta(hours=1))
    assert scheduler.tick() == []  # nothing left to do: a sweep is idempotent


def test_a_resolved_round_replays_after_its_unneeded_uploads_are_purged(world: World) -> None:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        bob = session.scalars(select(Account).where(Account.username == "bob")).one()
        for _ in range(2):  # late re-uploads: never scored, nor needed
            upload_series(
                session,
                world.clock,
                world.storage,
                round_,
                bob,
                world.models["bob"],
                world.predictions["bob"].iloc[::-1].set_axis(world.predictions["bob"].index),
            )
            world.clock.advance(MINUTE)
    world.clock.advance(40 * DAY)
    score(world, FeedTargets(wide_market_feed()))
    with transaction(world.sessions) as session:
        RoundLifecycle(None, world.clock).resolve(session, session.get_one(Round, world.round_id))

    swept = sweep_submission_files(
        world.sessions, world.storage, datetime.now(UTC), Retention(keep_newest=0)
    )
    assert swept == Swept(purged=2, orphans=0)
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert replay_round(session, world.clock, world.storage, round_) == []
