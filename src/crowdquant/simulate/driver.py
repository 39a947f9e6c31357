"""The loop that runs a tournament by itself: move the clock, tick the scheduler, let the
bots play.

Each step moves the accelerated clock to the next moment worth stopping at (a round opening
or closing, the daily scoring hour, or at most `step` on), applies what is due with one
scheduler tick, then, when a round opened or closed, lets the bots it concerns (a latecomer
plays closed rounds, the others open ones; on the first step, every bot) look at the
tournament through the API and play. A bot that failed (the server was busy, say) gets
another chance a simulated minute later, with every other bot. Bots only ever talk to the
served API; the driver only tells them when to look. Work a server runs beside the
scheduler on real time (the diagnostics worker's polls) runs at the end of each step instead,
so that nothing moves with the real clock and the same seed gives the same run.

A step may use a second core (`spawned.Spawned`). Given a `market` process, the scheduler
runs the calendar's half of its tick here and the market's half (scoring, resolution, the
fund) there, while the bots upload. The driver waits for that half only where something
depends on it: before the bots stake where a round may resolve (they stake on what it pays
and burns) or a bot has a stake to place, and before a calendar's half that moves rounds
(closes them, starts their scoring). A calendar's half that moves none only opens rounds,
which the market's half never reads: that step's market half starts first and runs beside
it. Elsewhere (a close's first scores, say) the half runs on into the next step, beside that
step's calendar half and bots, which read nothing it writes, and its events come with the
step it was waited in. Given `more_players`, a share of the bots (a `Players` there)
uploads, then stakes, in that process while the others do here. What is decided, and in
which order, is as in a sequential step.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crowdquant.simulate.bots import Bot, Participant
from crowdquant.simulate.clock import AcceleratedClock
from crowdquant.simulate.spawned import Spawned
from crowdquant.tournament.calendar import Schedule, next_round, round_open_at
from crowdquant.tournament.scheduler import (
    CALENDAR_MOVES,
    MARKET_MOVES,
    Event,
    RoundClosed,
    RoundOpened,
    Scheduler,
    TickFailed,
    UploadsSwept,
)

logger = logging.getLogger(__name__)

EPSILON = timedelta(seconds=1)
"""How long after a round opens or closes the driver stops: inside the new state."""
RETRY_AFTER = timedelta(minutes=1)
"""When a bot failed, how soon the driver stops again to let it try once more."""


@dataclass
class Step:
    at: datetime
    events: list[Event] = field(default_factory=list)
    played: list[str] = field(default_factory=list)  # what the bots did, in words
    failed: list[str] = field(default_factory=list)  # bots (and polls) that failed, and why


@dataclass
class Turns:
    """What bots did in one phase of a step, and which failed and why, in words; after
    uploads, whether a bot has a stake to place."""

    played: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    staking: bool = False


class Players:
    """Bots and the clients they play through, played one phase of a step at a time: the
    driver's own, or a share of them in a process of their own (`Driver.more_players`)."""

    def __init__(self, players: Sequence[tuple[Bot, Participant]]) -> None:
        self.players = list(players)
        self._uploaded: list[tuple[Bot, Participant]] = []

    def upload(self, everyone: bool, events: Sequence[Event]) -> Turns:
        """Let each bot upload (`Bot.upload`): `everyone`, or only the bots `events` concern
        (a latecomer plays rounds that closed, the others rounds that opened)."""
        turns, self._uploaded = Turns(), []
        for bot, client in self.players:
            if not everyone and not bot.looks_after(events):
                continue
            done = _try(turns, bot, bot.upload, client)
            if done is not None:
                turns.played.append(done)
                self._uploaded.append((bot, client))
        turns.staking = any(bot.stakes_next for bot, _ in self._uploaded)
        return turns

    def place_stakes(self) -> Turns:
        """Let each bot that uploaded last stake (`Bot.place_stakes`)."""
        turns = Turns()
        for bot, client in self._uploaded:
            _try(turns, bot, bot.place_stakes, client)
        self._uploaded = []
        return turns

    def close(self) -> None:
        for _, client in self.players:
            client.close()


@dataclass
class Driver:
    clock: AcceleratedClock
    scheduler: Scheduler
    schedules: Sequence[Schedule]  # of the tournaments the bots play
    players: Sequence[tuple[Bot, Participant]]
    step_size: timedelta = timedelta(hours=1)
    polls: Sequence[Callable[[], object]] = ()
    """Background work run once at the end of every step, in this thread (a server runs it
    on a thread of its own, on real time): the diagnostics worker's poll."""
    market: Spawned | None = None
    """A process running the market's half of each tick (a `Scheduler`'s `follow_market`)
    while the bots upload, waited for where needed (None: each tick runs whole here, first)."""
    more_players: Spawned | None = None
    """A process playing more bots (a `Players`) while `players` play here."""
    _woken: bool = False
    _retry: bool = False  # a bot failed: wake the bots again soon

    def __post_init__(self) -> None:
        self._players = Players(self.players)

    def next_moment(self) -> datetime:
        now = self.clock.now()
        moments = [now + (RETRY_AFTER if self._retry else self.step_size)]
        for schedule in self.schedules:
            moments.append(next_round(schedule, now + EPSILON).open_time + EPSILON)
            open_now = round_open_at(schedule, now)
            if open_now is not None:
                moments.append(open_now.close_time + EPSILON)
            scoring = datetime.combine(now.date(), schedule.resolve_at, now.tzinfo) + EPSILON
            moments.append(scoring if scoring > now else scoring + timedelta(days=1))
        return min(moment for moment in moments if moment > now)

    def step(self) -> Step:
        step = Step(self.clock.advance_to(self.next_moment()))
        resolving = False
        if self.market is None:
            step.events = _told(self.scheduler.tick())
        else:  # the market's half runs there while the bots upload
            due = self.scheduler.moves_due(step.at)
            resolving = bool(due & MARKET_MOVES)
            if due & CALENDAR_MOVES:  # the calendar moves rounds the market's half reads
                self._finish_market(step)
                step.events += _told(self.scheduler.advance_calendar())
                self.market.start(step.at, "follow_market")
            else:  # it only opens rounds, which the market's half never reads: both at once
                self.market.start(step.at, "follow_market")
                try:
                    step.events += _told(self.scheduler.advance_calendar())
                except BaseException:
                    self._finish_market(step)  # no half left running behind a failure
                    raise
        everyone = not self._woken or self._retry
        woken = everyone or any(isinstance(e, RoundOpened | RoundClosed) for e in step.events)
        staking = False
        try:
            if woken:
                turns = self._play(step, "upload", everyone, list(step.events))
                staking = any(turn.staking for turn in turns)
        except BaseException:
            self._finish_market(step)  # no half left running behind a failure
            raise
        if resolving or staking:
            self._finish_market(step)
        if woken:
            self._woken = True
            self._play(step, "place_stakes")
            self._retry = bool(step.failed)
        for poll in self.polls:
            try:
                poll()
            except Exception as exc:  # as on a server's thread: told, and tried again next step
                logger.debug("poll %r failed", poll, exc_info=exc)
                step.failed.append(f"{_name(poll)}: {type(exc).__name__}: {exc}")
        return step

    def _finish_market(self, step: Step) -> None:
        """Wait for every market half still running; their events go to `step`."""
        while self.market is not None and self.market.pending:
            step.events.extend(self.market.finish())

    def _play(self, step: Step, phase: str, *args: object) -> list[Turns]:
        """One phase of the bots' turns (`Players.upload` or `place_stakes`): here, and in
        the process of `more_players` at the same time."""
        if self.more_players is not None:
            self.more_players.start(step.at, phase, *args)
        turns: list[Turns] = []
        try:
            turns.append(getattr(self._players, phase)(*args))
        finally:
            if self.more_players is not None:
                turns.append(self.more_players.finish())
        for turn in turns:
            step.played.extend(turn.played)
            step.failed.extend(turn.failed)
        return turns

    def run(self, until: Callable[[Step], bool]) -> None:
        """Step until `until(step)` says so; no market half is left running."""
        while not until(self.step()):
            pass
        self._finish_market(Step(self.clock.now()))


def _try(
    turns: Turns, bot: Bot, turn: Callable[[Participant], str | None], client: Participant
) -> str | None:
    """`turn(client)`'s answer; a bot's failure is its own (the tournament goes on): told in
    `turns`."""
    try:
        return turn(client)
    except Exception as exc:
        logger.debug("bot %s failed", bot.username, exc_info=exc)
        turns.failed.append(f"{bot.username}: {type(exc).__name__}: {exc}")
        return None


def _told(events: Sequence[Event | UploadsSwept]) -> list[Event]:
    """A tick's events, less the sweeps of uploads (the bots never look at those)."""
    return [e for e in events if not isinstance(e, UploadsSwept)]


def _name(poll: Callable[[], object]) -> str:
    owner = getattr(poll, "__self__", None)
    return str(getattr(owner, "name", None) or getattr(poll, "__qualname__", repr(poll)))


def failures(step: Step) -> list[str]:
    """The scheduler's failed ticks and the bots' and polls' failures of a step, in words."""
    return [str(e) for e in step.events if isinstance(e, TickFailed)] + step.failed
