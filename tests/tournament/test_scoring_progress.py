"""The scheduler passes over a scoring round its last pass left complete, and looks again
at one whose stored scores, submissions or revealed days changed since."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd
import pytest
from sqlalchemy import delete, event, select

from crowdquant.db.models import MetaModel, Model, Round, RoundScore
from crowdquant.db.session import transaction
from crowdquant.scoring.round import PreparedRound
from crowdquant.tournament.models import create_model
from crowdquant.tournament.runtime import TournamentRuntime
from crowdquant.tournament.scheduler import RoundScored, Scheduler, TickFailed
from crowdquant.tournament.scoring import (
    FeedTargets,
    InputsCache,
    ScoringProgress,
    compute_round,
    daily,
    replay_round,
    scoring_rounds,
)

from .scored_round import DAY, World, market_feed, stored_scores, upload

HOUR = timedelta(hours=1)


def scheduler_of(world: World) -> Scheduler:
    runtime = TournamentRuntime(targets=FeedTargets(market_feed()))
    return Scheduler(
        world.sessions, world.clock, {8: runtime}, storage=world.storage, inputs_cache=InputsCache()
    )


def scored(scheduler: Scheduler) -> list[RoundScored]:
    return [event for event in scheduler.tick() if isinstance(event, RoundScored)]


def fully_checked(world: World) -> bool:
    """Whether a pass that trusts nothing remembered would add nothing (it writes no row)."""
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        source = FeedTargets(market_feed())
        return compute_round(session, world.clock, world.storage, round_, source) is None


def days_known(world: World) -> int:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        return FeedTargets(market_feed()).days_known(round_, world.clock.now())


def progress(world: World) -> ScoringProgress:
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        [(listed, counted)] = scoring_rounds(session, round_.tournament_id)
        assert listed.id == world.round_id
        return counted


def test_a_round_passed_over_is_complete_and_new_days_are_scored(world: World) -> None:
    scheduler = scheduler_of(world)
    world.clock.advance(5 * DAY)
    [first] = scored(scheduler)
    days = len(first.days)
    assert days > 0
    counted = progress(world)
    assert counted == ScoringProgress(
        submissions=5, scores=len(stored_scores(world)), target_days=days
    )
    assert scheduler.scoring_memory.complete(world.round_id, counted) is not None

    assert scored(scheduler) == []  # passed over: nothing changed, no new day
    assert fully_checked(world)

    world.clock.advance(3 * DAY)
    known = days_known(world)
    assert known > days
    [later] = scored(scheduler)  # only the new days, without a search for gaps
    assert later.days == tuple(range(days + 1, known + 1))
    assert later.scores == 5 * (known - days)
    assert fully_checked(world)
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert replay_round(session, world.clock, world.storage, round_) == []


def test_later_passes_score_with_the_preparation_kept_beside_the_inputs(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    prepared: list[PreparedRound] = []

    class Counted(PreparedRound):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            prepared.append(self)

    monkeypatch.setattr(daily, "PreparedRound", Counted)
    scheduler = scheduler_of(world)
    world.clock.advance(5 * DAY)
    scored(scheduler)  # fixes the meta model: kept, with their preparation, once committed
    built = len(prepared)
    assert built > 0
    world.clock.advance(3 * DAY)
    scored(scheduler)
    assert len(prepared) == built  # not read nor prepared again
    world.clock.advance(3 * DAY)
    [again] = scored(scheduler)
    assert again.scores > 0 and len(prepared) == built  # scored with the kept preparation
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert replay_round(session, world.clock, world.storage, round_) == []


def test_a_late_upload_and_deleted_scores_are_seen_by_the_next_tick(world: World) -> None:
    scheduler = scheduler_of(world)
    world.clock.advance(5 * DAY)
    [first] = scored(scheduler)
    days = len(first.days)

    world.clock.advance(HOUR)  # each pass at a time of its own, as a replay tells them
    with transaction(world.sessions) as session:  # a new model uploads late
        round_ = session.get_one(Round, world.round_id)
        bob = session.scalars(select(Model).where(Model.name == "bob")).one().account
        newcomer = create_model(session, world.clock, bob, 8, "newcomer")
        ids = pd.Index(world.live.index, name="id")
        values = (pd.Series(range(len(ids)), index=ids, dtype=float) + 0.5) / len(ids)
        upload(session, world.clock, world.storage, round_, bob, newcomer.id, values)
        world.models["newcomer"] = newcomer.id
    [late] = scored(scheduler)  # its every day so far, from inputs read again
    assert late.scores == days + 1  # day 0 and each known day
    newcomer_days = stored_scores(world).query("model == 'newcomer'")["day"]
    assert set(newcomer_days) == set(range(days + 1))

    with transaction(world.sessions) as session:  # a day's scores deleted to be rescored
        session.execute(delete(RoundScore).where(RoundScore.day == days))
    assert not fully_checked(world)
    world.clock.advance(HOUR)
    [rescored] = scored(scheduler)
    assert rescored.days == (days,) and rescored.scores == 6
    assert fully_checked(world)
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert replay_round(session, world.clock, world.storage, round_) == []


def test_scores_that_fail_to_commit_are_written_again(world: World) -> None:
    """The round's rows fail to commit with the others' and then on their own: the tick says
    so and stores nothing. At the next tick they fail with the others' only, and are written
    on their own: every day known, as a replay reproduces."""
    scheduler = scheduler_of(world)
    world.clock.advance(5 * DAY)
    failures: list[Exception] = []

    def refuse(connection: object, cursor: object, statement: str, *args: object) -> None:
        if failures and statement.startswith("INSERT INTO round_scores"):
            raise failures.pop()

    engine = world.sessions.kw["bind"]
    event.listen(engine, "before_cursor_execute", refuse)
    try:
        failures.extend([RuntimeError("the disk is full")] * 2)
        happened = scheduler.tick()
        assert [type(e) for e in happened] == [TickFailed]
        assert "the disk is full" in str(happened[0])
        assert stored_scores(world).empty and failures == []

        world.clock.advance(HOUR)
        failures.append(RuntimeError("the disk is full"))
        [scored_now] = scored(scheduler)
        assert failures == []
    finally:
        event.remove(engine, "before_cursor_execute", refuse)
    assert scored_now.days == tuple(range(1, days_known(world) + 1))
    assert fully_checked(world)
    with transaction(world.sessions) as session:  # the meta model fixed again, and stored
        assert session.scalar(select(MetaModel).where(MetaModel.round_id == world.round_id))
    with transaction(world.sessions) as session:
        round_ = session.get_one(Round, world.round_id)
        assert replay_round(session, world.clock, world.storage, round_) == []
