"""The in-process scheduler: the clock's side of the round lifecycle.

`Scheduler.tick()` looks at every tournament and applies each transition whose time has
come: it closes a round at its close time, moves it to scoring right after, resolves it at
its resolve time, and opens the tournament's next round when the calendar says a round is
open for submissions and none exists for that window yet. Each transition runs in its own
transaction, and a failure is caught, logged and reported as a `TickFailed` event, so one
broken tournament (a failing publisher, a bad setting) never blocks another. A failure is
said once: while each tick fails the same way, the next ticks try again quietly, and it is
said again only after a tick where it did not happen.

A tick is two halves, run in turn: the calendar's (`advance_calendar`: sweeps, closes, opens:
all that participants act on) and the market's (`follow_market`: scores, resolutions, the
fund). The market's half reads what the calendar's committed, and may run in another
process while participants upload (the simulator runs it so). Every transaction that reads,
then writes, takes the write lock from its start on SQLite (`write_transaction`), so that a
write committed meanwhile by another connection never makes its snapshot stale.

Ticks are idempotent: everything is decided from the database and the clock, and every
transition is a compare-and-set, so a tick that crashed half-way can simply run again, and
a second tick at the same time does nothing. A scheduler that was stopped catches up on
its next tick: overdue rounds are closed, scored and resolved, but rounds whose whole
window was missed are never opened after the fact (numbering stays sequential).

Given a ledger, closing a round freezes its stakes and resolving it pays and burns them
(`lifecycle.RoundLifecycle`), in the transaction of the status change.

On the `evm` ledger, a tournament staking per round has its rounds on chain too
(`chain_stakes`): each tick opens its new rounds on the tournament contract, pulls the
stakes authorised for a round into escrow and mirrors them into the books right before the
round closes (in the ticks of the last `PULL_AHEAD` and at the close, as the chain takes
no stake after it; a round whose stakes cannot be mirrored stays open until they can), and
pays a round's claims in batches once its resolution is sent. Every step that may queue chain
calls is followed by sending them (`EvmLedger.dispatch`). On the `sql` ledger none of this
runs.

Tournaments without a publisher are advanced but never get new rounds.

Tournaments given a fund market get a book for each round whose meta model is fixed, and
their P&L booked as the market closes days (`fund.rounds`), each tick in its own
transaction.

With storage, a tick also deletes raw uploads abandoned for a day (at most hourly, or every
`Retention.sweep_every`).

Several processes on one database each run a scheduler, but only the holder of the
"scheduler" lease (`db.lease`) ticks, the hourly sweep included (`run_forever`); its
transactions are fenced, so two ticks never run at once, even when a holder stalls.

Tournaments given a target source are scored: every tick scores each scoring round for the
days the market has revealed, and such a round resolves at its resolve time only once its
final day is scored. Without a source, a round resolves at its resolve time unscored. One
query counts what each scoring round's scores rest on (`scoring.scoring_rounds`); a round
whose counts are those its last pass left (`scoring.ScoringMemory`, in memory) and whose
market revealed no new day is passed over, and one that only got new days scores them
without searching its stored scores for gaps. Each other round's pass is computed in a
transaction that writes nothing (`scoring.compute_round`: its files are stored then), and
all their rows are written in one transaction (`scoring.write_scores`), or, if that fails,
each round's in its own. A pass that dies before its rows commit is done again whole by the
next tick.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import Clock
from crowdquant.db.lease import Lease
from crowdquant.db.models import Round, RoundStatus, Tournament
from crowdquant.db.session import transaction, write_transaction
from crowdquant.fund.rounds import RoundMarket
from crowdquant.ledger import Ledger
from crowdquant.storage import FileStorage
from crowdquant.tournament.calendar import round_open_at, schedule_for
from crowdquant.tournament.chain_stakes import (
    on_chain,
    open_chain_round,
    pay_chain_claims,
    pull_chain_stakes,
    rounds_to_open_on_chain,
)
from crowdquant.tournament.compute_jobs import queue_jobs
from crowdquant.tournament.fund import plan_books, update_fund
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.retention import Retention, SweepCursor, sweep_submission_files
from crowdquant.tournament.rounds import (
    LivePublisher,
    current_round,
    open_round,
    publish_early,
)
from crowdquant.tournament.runtime import NO_RUNTIME, TournamentRuntime
from crowdquant.tournament.scoring import (
    Complete,
    InputsCache,
    ScoringMemory,
    ScoringPass,
    ScoringProgress,
    TargetSource,
    compute_round,
    days_recorded,
    scoring_rounds,
    write_scores,
)
from crowdquant.tournament.tournaments import get_tournament
from crowdquant.tournament.uploads import sweep_abandoned_uploads
from crowdquant.tournament.webhooks import queue_deliveries

logger = logging.getLogger(__name__)
PULL_AHEAD = timedelta(minutes=10)
"""On chain, the ticks this long before a round's close pull its stakes (and at the close)."""
SCORING_ROUNDS_KEPT = 32
"""By default, the scoring rounds whose inputs the scheduler keeps in memory between passes."""
INPUTS_BYTES_KEPT = 256 * 2**20
"""By default, the most bytes of kept inputs (a round of 6,000 rows and 5,000 submissions
holds about 240 MB; a larger one is read again each pass)."""


# --- events ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """Something a tick did (or failed to do) to one tournament, at the tick's time."""

    tournament: int
    at: datetime


@dataclass(frozen=True)
class RoundOpened(Event):
    round: int
    live_era: str

    def __str__(self) -> str:
        return (
            f"round {self.round} of tournament {self.tournament} opened (live era {self.live_era})"
        )


@dataclass(frozen=True)
class RoundClosed(Event):
    round: int

    def __str__(self) -> str:
        return f"round {self.round} of tournament {self.tournament} closed"


@dataclass(frozen=True)
class ScoringStarted(Event):
    round: int

    def __str__(self) -> str:
        return f"round {self.round} of tournament {self.tournament} is scoring"


@dataclass(frozen=True)
class RoundResolved(Event):
    round: int

    def __str__(self) -> str:
        return f"round {self.round} of tournament {self.tournament} resolved"


@dataclass(frozen=True)
class RoundOpenedOnChain(Event):
    round: int
    chain_round: int

    def __str__(self) -> str:
        return (
            f"round {self.round} of tournament {self.tournament} opened on chain"
            f" (round {self.chain_round} of the contract)"
        )


@dataclass(frozen=True)
class StakesLocked(Event):
    round: int
    stakes: int

    def __str__(self) -> str:
        return (
            f"round {self.round} of tournament {self.tournament}: {self.stakes} stake(s)"
            " locked on chain"
        )


@dataclass(frozen=True)
class ClaimsPaid(Event):
    round: int
    batches: int

    def __str__(self) -> str:
        return (
            f"round {self.round} of tournament {self.tournament}: claims paid on chain"
            f" ({self.batches} batch(es))"
        )


@dataclass(frozen=True)
class RoundScored(Event):
    round: int
    days: tuple[int, ...]
    scores: int

    def __str__(self) -> str:
        days = ", ".join(map(str, self.days)) or "0"
        return (
            f"round {self.round} of tournament {self.tournament}: {self.scores} new scores"
            f" (days {days})"
        )


@dataclass(frozen=True)
class FundUpdated(Event):
    books: int
    days: int

    def __str__(self) -> str:
        return (
            f"tournament {self.tournament}'s fund: {self.books} new book(s),"
            f" {self.days} day(s) booked"
        )


@dataclass(frozen=True)
class UploadsSwept:
    """Raw uploads never named in a submission or diagnostics request, deleted; submission
    files no longer kept, purged; files no row names, deleted (`retention`)."""

    at: datetime
    count: int
    purged: int = 0
    orphans: int = 0

    def __str__(self) -> str:
        done = [f"deleted {self.count} abandoned upload(s)"] if self.count else []
        if self.purged:
            done.append(f"purged {self.purged} submission file(s)")
        if self.orphans:
            done.append(f"deleted {self.orphans} orphan submission file(s)")
        return ", ".join(done) or "deleted nothing"


@dataclass(frozen=True)
class TickFailed(Event):
    action: str  # e.g. "open a round", "close round 3"
    error: str

    def __str__(self) -> str:
        return f"tournament {self.tournament}: could not {self.action}: {self.error}"


_EVENT_OF: Mapping[RoundStatus, type[RoundClosed | ScoringStarted | RoundResolved]] = {
    RoundStatus.CLOSED: RoundClosed,
    RoundStatus.SCORING: ScoringStarted,
    RoundStatus.RESOLVED: RoundResolved,
}
_VERB = {RoundStatus.CLOSED: "close", RoundStatus.SCORING: "score", RoundStatus.RESOLVED: "resolve"}
CALENDAR_MOVES = frozenset({RoundStatus.CLOSED, RoundStatus.SCORING})
"""The moves of the calendar's half of a tick: a round closed, then scoring."""
MARKET_MOVES = frozenset({RoundStatus.RESOLVED})
"""The moves of the market's half: a round resolved."""


# --- the scheduler ---------------------------------------------------------------------------


class Scheduler:
    """Drives every tournament's rounds from `clock`.

    `runtimes` maps a tournament number to what it runs on (`runtime.TournamentRuntime`):
    the publisher of its live eras, the source of their targets and the market its fund
    trades (both need `storage`); `ledger` moves the stakes as rounds close and resolve.
    `inputs_cache` keeps scoring rounds' inputs between passes (by default at most
    `SCORING_ROUNDS_KEPT` rounds and `INPUTS_BYTES_KEPT` bytes), those that fixed a meta
    model once its row has committed.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        clock: Clock,
        runtimes: Mapping[int, TournamentRuntime],
        *,
        storage: FileStorage | None = None,
        ledger: Ledger | None = None,
        retention: Retention | None = None,
        inputs_cache: InputsCache | None = None,
    ) -> None:
        self.sessions, self.clock = sessions, clock
        if inputs_cache is None:  # a few dozen rounds' inputs, within a bound in bytes
            inputs_cache = InputsCache(SCORING_ROUNDS_KEPT, INPUTS_BYTES_KEPT)
        self.inputs_cache = inputs_cache  # scoring rounds' inputs kept between passes
        self.scoring_memory = ScoringMemory()  # what each round's last pass left
        self.retention = retention or Retention()
        self.sweep_cursor = SweepCursor()  # where the next bounded sweep carries on from
        self.runtimes = dict(runtimes)
        scored = (r.targets is not None or r.market is not None for r in self.runtimes.values())
        if any(scored) and storage is None:
            raise ValueError("scoring rounds needs the storage their files are in")
        self.storage = storage
        self.lifecycle = RoundLifecycle(ledger, clock)
        self.chain = on_chain(ledger)  # None: the stakes stay in the database's books
        self._swept_at: datetime | None = None
        self._standing: dict[str, set[tuple[int, str, str]]] = {}  # each half's last failures

    def tick(self) -> list[Event | UploadsSwept]:
        """Apply every transition that is due now; return what happened, in order: the
        calendar's half (`advance_calendar`), then the market's (`follow_market`)."""
        return [*self.advance_calendar(), *self.follow_market()]

    def advance_calendar(self) -> list[Event | UploadsSwept]:
        """The calendar's half of a tick, all that participants act on: abandoned uploads
        swept, rounds closed at their close time (their stakes frozen) and moved to
        scoring, and each tournament's next round opened (on chain too)."""
        now = self.clock.now()
        swept = self._sweep_uploads(now)
        events: list[Event] = []
        for tournament in self._tournaments():
            events.extend(self._close_rounds(tournament.id, tournament.number, now))
            publisher = self.runtime(tournament.number).publisher
            if publisher is not None:
                events.extend(self._open_due_round(tournament, now, publisher))
            if self.chain is not None:
                events.extend(self._open_chain_rounds(tournament.id, tournament.number, now))
        done: list[Event | UploadsSwept] = [] if swept is None else [swept]
        return done + self._tell("calendar", events)

    def follow_market(self) -> list[Event]:
        """The market's half of a tick: scoring rounds scored for the days revealed,
        resolved at their resolve time once their final day is scored (their stakes paid
        and burned), and the fund's books and days.

        It reads what the calendar's half of the same moment committed and writes only
        scores, resolutions and the fund: participants uploading to the open rounds meanwhile
        change nothing it reads, except a late upload to a closed round, which the next pass
        scores, and nor does a later calendar's half that moves no round (`moves_due`): it
        only opens the next. Its writing transactions are writers from their start, so it
        may run in another process while they upload (the simulator does)."""
        now = self.clock.now()
        events: list[Event] = []
        for tournament in self._tournaments():
            events.extend(self._follow_market(tournament.id, tournament.number, now))
        return self._tell("market", events)

    def moves_due(self, now: datetime) -> frozenset[RoundStatus]:
        """The moves of round status due at `now` in any tournament (`CALENDAR_MOVES`,
        `MARKET_MOVES`), as each half of a tick at `now` would see them before it runs."""
        with transaction(self.sessions) as session:
            rounds = session.scalars(select(Round).where(Round.status != RoundStatus.RESOLVED))
            due = {self.lifecycle.due(round_, now) for round_ in rounds}
        return frozenset(move for move in due if move is not None)

    def _tournaments(self) -> list[Tournament]:
        with transaction(self.sessions) as session:
            return list(session.scalars(select(Tournament).order_by(Tournament.number)))

    def _tell(self, half: str, events: list[Event]) -> list[Event]:
        """`events` logged, less the failures the last run of this `half` said already."""
        for event in events:
            if not isinstance(event, TickFailed):  # failures are logged where caught
                logger.info("%s", event)
        standing = self._standing.get(half, set())
        self._standing[half] = {_failure(e) for e in events if isinstance(e, TickFailed)}
        return [e for e in events if not isinstance(e, TickFailed) or _failure(e) not in standing]

    def runtime(self, number: int) -> TournamentRuntime:
        """What tournament `number` runs on (nothing, for one without a runtime)."""
        return self.runtimes.get(number, NO_RUNTIME)

    def _sweep_uploads(self, now: datetime) -> UploadsSwept | None:
        """At most every `retention.sweep_every` (an hour): delete raw uploads abandoned for a
        day (`uploads.ABANDONED_AFTER`), then one bounded step of submission file retention
        (`retention`)."""
        if self.storage is None or (
            self._swept_at is not None and now - self._swept_at < self.retention.sweep_every
        ):
            return None
        self._swept_at = now
        try:
            count = sweep_abandoned_uploads(self.storage, now)
            kept = sweep_submission_files(
                self.sessions, self.storage, now, self.retention, self.sweep_cursor
            )
        except Exception:
            logger.exception("sweeping uploads failed")
            return None
        swept = UploadsSwept(at=now, count=count, purged=kept.purged, orphans=kept.orphans)
        if not (count or kept.purged or kept.orphans):
            return None
        logger.info("%s", swept)
        return swept

    def run_forever(
        self, stop: threading.Event, interval: float = 60.0, lease: Lease | None = None
    ) -> None:
        """Tick every `interval` seconds until `stop` is set; a failing tick is logged.

        Given a `lease` (several processes on one database), tick only while holding it:
        it is taken or renewed right before each tick and every `renew_every` seconds
        between, and released at the end. The scheduler's sessions should be the lease's
        `fenced` ones, so that a tick that outlives the lease stops at its next step.
        """
        wake = interval if lease is None else min(interval, lease.renew_every)
        next_tick = time.monotonic()
        try:
            while not stop.is_set():
                if self._holds(lease) and time.monotonic() >= next_tick:
                    try:
                        self.tick()
                    except Exception:
                        logger.exception("a scheduler tick failed; trying again in %s s", interval)
                    next_tick = time.monotonic() + interval
                stop.wait(max(0.0, min(wake, next_tick - time.monotonic())) or wake)
        finally:
            if lease is not None:
                lease.release()

    def _holds(self, lease: Lease | None) -> bool:
        """Whether this process may tick: no lease to share, or it holds it (now renewed)."""
        if lease is None:
            return True
        try:
            return lease.acquire()
        except Exception:
            logger.exception("could not take the scheduler lease")
            return False

    # -- steps, each in its own transaction -------------------------------------------------

    def _close_rounds(self, tournament_id: uuid.UUID, number: int, now: datetime) -> list[Event]:
        """Close the rounds whose close time has come and move them to scoring (on chain,
        their stakes pulled into the books first, and in the last `PULL_AHEAD` before)."""
        listed = self._due_rounds(tournament_id, number, now, CALENDAR_MOVES)
        if isinstance(listed, TickFailed):
            return [listed]
        due, closing_soon = listed
        events: list[Event] = []
        if self.chain is not None:  # the chain takes no stake at or after the close
            for round_id, round_number in closing_soon:
                events.extend(self._pull_chain_stakes(round_id, number, round_number, now))
        for round_id, round_number, wanted in due:
            if wanted is RoundStatus.CLOSED and self.chain is not None:
                locked = self._pull_chain_stakes(round_id, number, round_number, now)
                events.extend(locked)
                if any(isinstance(event, TickFailed) for event in locked):
                    continue  # closed once its stakes are in the books
            events.extend(self._advance_round(round_id, number, now, CALENDAR_MOVES))
        return events

    def _follow_market(self, tournament_id: uuid.UUID, number: int, now: datetime) -> list[Event]:
        """Resolve the rounds due whose final day is scored, score the scoring rounds (and
        resolve those due then), and update the fund."""
        listed = self._due_rounds(tournament_id, number, now, MARKET_MOVES)
        if isinstance(listed, TickFailed):
            return [listed]
        events: list[Event] = []
        for round_id, _, _ in listed[0]:
            events.extend(self._advance_round(round_id, number, now, MARKET_MOVES))
        runtime = self.runtime(number)
        source = runtime.targets
        if source is not None:
            events.extend(self._score_rounds(tournament_id, number, now, source))
        market = runtime.market
        if market is not None:
            events.extend(self._update_fund(tournament_id, number, now, market))
        return events

    def _due_rounds(
        self, tournament_id: uuid.UUID, number: int, now: datetime, moves: frozenset[RoundStatus]
    ) -> tuple[list[tuple[uuid.UUID, int, RoundStatus]], list[tuple[uuid.UUID, int]]] | TickFailed:
        """The unresolved rounds due to move to one of `moves` now (with the status due),
        and the open rounds closing within `PULL_AHEAD`."""
        try:
            with transaction(self.sessions) as session:
                rounds = list(
                    session.scalars(
                        select(Round)
                        .where(
                            Round.tournament_id == tournament_id,
                            Round.status != RoundStatus.RESOLVED,
                        )
                        .order_by(Round.number)
                    )
                )
        except Exception as exc:
            return self._failed(number, now, "list its rounds", exc)
        due = [
            (round_.id, round_.number, wanted)
            for round_ in rounds
            if (wanted := self.lifecycle.due(round_, now)) in moves
        ]
        closing_soon = [
            (round_.id, round_.number)
            for round_ in rounds
            if round_.status is RoundStatus.OPEN
            and round_.close_time - PULL_AHEAD <= now < round_.close_time
        ]
        return due, closing_soon

    def _update_fund(
        self, tournament_id: uuid.UUID, number: int, now: datetime, market: RoundMarket
    ) -> list[Event]:
        """Books for newly fixed meta models, then the market days closed since."""
        assert self.storage is not None
        try:
            with transaction(self.sessions) as session:  # the slow part, before the write lock
                tournament = session.get_one(Tournament, tournament_id)
                planned = plan_books(session, self.clock, self.storage, tournament, market)
            with write_transaction(self.sessions) as session:
                tournament = session.get_one(Tournament, tournament_id)
                books, days = update_fund(
                    session, self.clock, self.storage, tournament, market, planned
                )
        except Exception as exc:
            return [self._failed(number, now, "update the fund", exc)]
        if not books and not days:
            return []
        return [FundUpdated(tournament=number, at=now, books=books, days=days)]

    def _score_rounds(
        self, tournament_id: uuid.UUID, number: int, now: datetime, source: TargetSource
    ) -> list[Event]:
        """Score each scoring round for the days revealed, then resolve those due.

        One query counts what every scoring round's scoring rests on (`scoring_rounds`); a
        round whose counts are those its last pass left and whose market revealed no new day
        is passed over without a transaction of its own. The others are computed each in a
        transaction that only reads, and their rows are written together in one transaction
        at the end (`_write_scores`), before any round resolves."""
        assert self.storage is not None
        try:
            with transaction(self.sessions) as session:
                scoring = scoring_rounds(session, tournament_id)
        except Exception as exc:
            return [self._failed(number, now, "list its scoring rounds", exc)]
        events: list[Event] = []
        computed: list[tuple[ScoringPass, ScoringProgress]] = []
        due: list[uuid.UUID] = []
        for listed, progress in scoring:
            complete = self.scoring_memory.complete(listed.id, progress)
            try:
                if complete is not None and not self._new_days(listed, source, complete):
                    scoring_pass = None
                else:
                    scoring_pass = self._compute_round(listed.id, source, progress, complete)
            except Exception as exc:
                self.scoring_memory.forget(listed.id)
                events.append(self._failed(number, now, f"score round {listed.number}", exc))
                continue
            if scoring_pass is not None:
                computed.append((scoring_pass, progress))
            if self.lifecycle.due(listed, now) is not None:
                due.append(listed.id)
        scored, failed = self._write_scores(number, now, computed)
        events.extend(scored)
        for round_id in due:  # otherwise, no transaction to find nothing to do
            if round_id not in failed:
                events.extend(self._advance_round(round_id, number, now, MARKET_MOVES))
        return events

    def _new_days(self, round_: Round, source: TargetSource, complete: Complete) -> bool:
        """Whether the market has revealed days of `round_` after those complete."""
        return source.days_known(round_, self.clock.now()) > complete.day

    def _compute_round(
        self,
        round_id: uuid.UUID,
        source: TargetSource,
        progress: ScoringProgress,
        complete: Complete | None,
    ) -> ScoringPass | None:
        """One round's pass computed in a transaction that writes nothing; a round with
        nothing to add is remembered as complete at once."""
        assert self.storage is not None
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, round_id)
            known = source.days_known(round_, self.clock.now())  # at most what the pass sees
            scoring_pass = compute_round(
                session, self.clock, self.storage, round_, source, self.inputs_cache, complete
            )
        if scoring_pass is None:
            day = known if complete is None else complete.day
            self._remember(round_id, Complete(progress, day))
        return scoring_pass

    def _write_scores(
        self, number: int, now: datetime, computed: list[tuple[ScoringPass, ScoringProgress]]
    ) -> tuple[list[Event], set[uuid.UUID]]:
        """Write every computed pass in one transaction; if that fails, each in its own, so
        that one round's failure is its own. What was scored, and the rounds that failed."""
        if not computed:
            return [], set()
        try:
            with write_transaction(self.sessions) as session:
                write_scores(session, [scoring_pass for scoring_pass, _ in computed])
            together = True
        except Exception:
            logger.debug("writing the scores together failed: each round on its own")
            together = False
        events: list[Event] = []
        failed: set[uuid.UUID] = set()
        for scoring_pass, progress in computed:
            round_id, update = scoring_pass.round_id, scoring_pass.update
            if not together:
                try:
                    with write_transaction(self.sessions) as session:
                        write_scores(session, [scoring_pass])
                except Exception as exc:
                    self.scoring_memory.forget(round_id)
                    self.inputs_cache.forget(round_id)
                    failed.add(round_id)
                    events.append(self._failed(number, now, f"score round {update.round}", exc))
                    continue
            self.inputs_cache.confirm(round_id)  # a meta model it fixed is committed
            left = ScoringProgress(
                progress.submissions,
                progress.scores + update.rows,
                progress.target_days + update.target_days,
            )
            self._remember(round_id, Complete(left, update.known))
            events.append(
                RoundScored(
                    tournament=number,
                    at=now,
                    round=update.round,
                    days=tuple(update.days),
                    scores=update.scores,
                )
            )
        return events, failed

    def _remember(self, round_id: uuid.UUID, complete: Complete) -> None:
        """Remember what a committed pass left, while its targets are recorded for days
        1…`day` and no more (otherwise the next pass looks again in full)."""
        if complete.progress.target_days == complete.day:
            self.scoring_memory.remember(round_id, complete)
        else:
            self.scoring_memory.forget(round_id)

    def _final_day_scored(self, session: Session, round_: Round) -> bool:
        source = self.runtime(round_.tournament.number).targets
        return source is None or days_recorded(session, round_) >= source.horizon

    def _advance_round(
        self, round_id: uuid.UUID, number: int, now: datetime, moves: frozenset[RoundStatus]
    ) -> list[Event]:
        """Apply the round's due transitions among `moves` one by one (at most three)."""
        events: list[Event] = []
        action = "read a round"
        while True:
            try:
                with write_transaction(self.sessions) as session:
                    round_ = session.get_one(Round, round_id)
                    wanted = self.lifecycle.due(round_, now)
                    if wanted not in moves:
                        return events
                    if wanted is RoundStatus.RESOLVED and not self._final_day_scored(
                        session, round_
                    ):
                        return events
                    action = f"{_VERB[wanted]} round {round_.number}"
                    if self.lifecycle.move_to(session, round_, wanted):
                        event = _EVENT_OF[wanted](tournament=number, at=now, round=round_.number)
                    else:  # another worker got there first: look again
                        continue
            except Exception as exc:
                events.append(self._failed(number, now, action, exc))
                return events
            events.append(event)
            if self.chain is not None:
                unsent = self._dispatch(number, now)
                events.extend(unsent)
                if isinstance(event, RoundResolved) and not unsent:
                    events.extend(self._pay_chain_claims(round_id, number, event.round, now))
            if isinstance(event, RoundResolved):
                events.extend(self._publish_meta_model(number, now))

    def _publish_meta_model(self, number: int, now: datetime) -> list[Event]:
        """Publish the validation meta model file again, now with the resolved round."""
        publisher = self.runtime(number).meta_model
        if publisher is None or self.storage is None:
            return []
        try:
            with write_transaction(self.sessions) as session:
                tournament = get_tournament(session, number)
                publisher.publish(session, self.clock, self.storage, tournament)
        except Exception as exc:
            return [self._failed(number, now, "publish the meta model file", exc)]
        return []

    def _open_due_round(
        self, listed: Tournament, now: datetime, publisher: LivePublisher
    ) -> list[Event]:
        number = listed.number
        try:
            times = round_open_at(schedule_for(listed.cadence, listed.settings), now)
            if times is None:  # the common case: decided without a transaction
                return []
            with transaction(self.sessions) as session:  # the slow part, before the write lock
                tournament = session.get_one(Tournament, listed.id)
                early = publish_early(session, tournament, publisher, times)
            if early is None:
                return []
            with write_transaction(self.sessions) as session:
                tournament = session.get_one(Tournament, listed.id)
                latest = current_round(session, tournament)
                if latest is not None and latest.open_time >= times.open_time:
                    return []
                opened = open_round(
                    session, self.clock, tournament, publisher, times=times, early=early
                )
                queue_jobs(session, opened, now)  # the uploaded models' runs
                queue_deliveries(session, opened, now)  # the webhooks' triggers
                event = RoundOpened(
                    tournament=number, at=now, round=opened.number, live_era=opened.live_era
                )
        except Exception as exc:
            return [self._failed(number, now, "open a round", exc)]
        return [event]

    # -- stakes on chain (the `evm` ledger) ----------------------------------------------------

    def _dispatch(self, number: int, now: datetime) -> list[Event]:
        """Send the chain calls the last step queued; a failure (none: all sent)."""
        assert self.chain is not None
        try:
            with self.sessions() as session:
                self.chain.dispatch(session)
        except Exception as exc:
            return [self._failed(number, now, "send its queued chain calls", exc)]
        return []

    def _open_chain_rounds(
        self, tournament_id: uuid.UUID, number: int, now: datetime
    ) -> list[Event]:
        """Open on the tournament contract each open round not there yet, then send it."""
        assert self.chain is not None
        try:
            with transaction(self.sessions) as session:
                tournament = session.get_one(Tournament, tournament_id)
                waiting = rounds_to_open_on_chain(session, tournament, now)
        except Exception as exc:
            return [self._failed(number, now, "list its rounds to open on chain", exc)]
        events: list[Event] = []
        for round_id in waiting:
            action = "open a round on chain"
            try:
                with write_transaction(self.sessions) as session:
                    round_ = session.get_one(Round, round_id)
                    action = f"open round {round_.number} on chain"
                    chain_round = open_chain_round(session, self.chain, self.clock, round_)
                    event = RoundOpenedOnChain(
                        tournament=number, at=now, round=round_.number, chain_round=chain_round
                    )
            except Exception as exc:
                events.append(self._failed(number, now, action, exc))
                continue
            events.append(event)
            events.extend(self._dispatch(number, now))
        return events

    def _pull_chain_stakes(
        self, round_id: uuid.UUID, number: int, round_number: int, now: datetime
    ) -> list[Event]:
        """Before `round_id` closes: its authorised stakes into escrow and into the books."""
        assert self.chain is not None
        try:
            locked = pull_chain_stakes(self.sessions, self.chain, self.clock, round_id)
        except Exception as exc:
            return [self._failed(number, now, f"lock round {round_number}'s stakes", exc)]
        if not locked:
            return []
        return [StakesLocked(tournament=number, at=now, round=round_number, stakes=locked)]

    def _pay_chain_claims(
        self, round_id: uuid.UUID, number: int, round_number: int, now: datetime
    ) -> list[Event]:
        """After `round_id`'s resolution is sent: pay its unpaid claims in batches."""
        assert self.chain is not None
        try:
            batches = pay_chain_claims(self.sessions, self.chain, round_id)
        except Exception as exc:
            return [self._failed(number, now, f"pay round {round_number}'s claims", exc)]
        if not batches:
            return []
        return [ClaimsPaid(tournament=number, at=now, round=round_number, batches=batches)]

    def _failed(self, number: int, now: datetime, action: str, exc: Exception) -> TickFailed:
        failed = TickFailed(
            tournament=number, at=now, action=action, error=f"{type(exc).__name__}: {exc}"
        )
        if any(_failure(failed) in said for said in self._standing.values()):  # said already
            logger.debug("%s", failed)
        else:
            logger.error("%s", failed, exc_info=exc)
        return failed


def _failure(event: TickFailed) -> tuple[int, str, str]:
    """What makes two ticks' failures the same: the tournament, the action and the error."""
    return event.tournament, event.action, event.error
