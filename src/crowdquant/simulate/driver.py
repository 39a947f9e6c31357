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

Given a `market` (`market_process.MarketProcess`), a step uses two cores: the scheduler runs
the calendar's half of its tick here, the market's half (scoring, resolution, the fund) runs
in that process while the bots upload, and the bots stake once it is done, on what it
resolved; what is decided, and in which order, is as in a sequential tick.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from crowdquant.simulate.bots import Bot, Participant
from crowdquant.simulate.clock import AcceleratedClock
from crowdquant.simulate.market_process import MarketProcess
from crowdquant.tournament.calendar import Schedule, next_round, round_open_at
from crowdquant.tournament.scheduler import (
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
class Driver:
    clock: AcceleratedClock
    scheduler: Scheduler
    schedules: Sequence[Schedule]  # of the tournaments the bots play
    players: Sequence[tuple[Bot, Participant]]
    step_size: timedelta = timedelta(hours=1)
    polls: Sequence[Callable[[], object]] = ()
    """Background work run once at the end of every step, in this thread (a server runs it
    on a thread of its own, on real time): the diagnostics worker's poll."""
    market: MarketProcess | None = None
    """Where the market's half of each tick runs while the bots upload (None: here, first)."""
    _woken: bool = False
    _retry: bool = False  # a bot failed: wake the bots again soon

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
        if self.market is None:
            step.events = _told(self.scheduler.tick())
        else:  # the market's half runs there while the bots upload here
            step.events = _told(self.scheduler.advance_calendar())
            self.market.start(step.at)
        try:
            everyone = not self._woken or self._retry
            woken = everyone or any(isinstance(e, RoundOpened | RoundClosed) for e in step.events)
            uploaded = self.let_bots_upload(step, everyone) if woken else []
        finally:
            if self.market is not None:
                step.events.extend(self.market.finish())
        if woken:
            self._woken = True
            self.let_bots_stake(step, uploaded)
            self._retry = bool(step.failed)
        for poll in self.polls:
            try:
                poll()
            except Exception as exc:  # as on a server's thread: told, and tried again next step
                logger.debug("poll %r failed", poll, exc_info=exc)
                step.failed.append(f"{_name(poll)}: {type(exc).__name__}: {exc}")
        return step

    def let_bots_upload(self, step: Step, everyone: bool = True) -> list[tuple[Bot, Participant]]:
        """Let each bot upload (`Bot.upload`): `everyone`, or only the bots the step's events
        concern (a latecomer plays rounds that closed, the others rounds that opened); the
        bots that uploaded."""
        uploaded = []
        for bot, client in self.players:
            if not everyone and not bot.looks_after(step.events):
                continue
            done = _try(step, bot, bot.upload, client)
            if done is not None:
                step.played.append(done)
                uploaded.append((bot, client))
        return uploaded

    def let_bots_stake(self, step: Step, uploaded: Sequence[tuple[Bot, Participant]]) -> None:
        """Let each bot that uploaded stake (`Bot.place_stakes`)."""
        for bot, client in uploaded:
            _try(step, bot, bot.place_stakes, client)

    def run(self, until: Callable[[Step], bool]) -> None:
        """Step until `until(step)` says so."""
        while not until(self.step()):
            pass


def _try(
    step: Step, bot: Bot, turn: Callable[[Participant], str | None], client: Participant
) -> str | None:
    """`turn(client)`'s answer; a bot's failure is its own (the tournament goes on): told in
    `step`."""
    try:
        return turn(client)
    except Exception as exc:
        logger.debug("bot %s failed", bot.username, exc_info=exc)
        step.failed.append(f"{bot.username}: {type(exc).__name__}: {exc}")
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
