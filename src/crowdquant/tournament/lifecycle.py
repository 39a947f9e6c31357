"""A round's lifecycle after it opens, and the only way it moves:

    open ──close──► closed ──start_scoring──► scoring ──resolve──► resolved

`RoundLifecycle` is built with the ledger and the clock: closing a round freezes its stakes
and resolving it pays and burns them, in the caller's transaction, together with the status
change (without a ledger, only the status moves). Each step is a compare-and-set on the
status it starts from (`UPDATE ... WHERE status = expected`), so a retry, or two workers
racing, apply it once: a step that finds the round already in the status it reaches does
nothing and returns False; one that finds it anywhere else raises `RoundStateError`. When a
step is due is `due`'s business (the scheduler asks it); the steps check statuses only.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crowdquant.clock import Clock
from crowdquant.db.models import Round, RoundStatus, Tournament
from crowdquant.faults import crash_point
from crowdquant.ledger import Ledger
from crowdquant.tournament.chain_stakes import queue_chain_resolution
from crowdquant.tournament.resolution import resolve_payouts
from crowdquant.tournament.rounds import RoundNotFound, RoundStateError
from crowdquant.tournament.staking import freeze_stakes


class RoundLifecycle:
    """Closes, starts scoring and resolves rounds, moving their stakes with the ledger."""

    ORDER: ClassVar[tuple[RoundStatus, ...]] = (
        RoundStatus.OPEN,
        RoundStatus.CLOSED,
        RoundStatus.SCORING,
        RoundStatus.RESOLVED,
    )
    """A round's statuses, in the order it goes through them."""

    def __init__(self, ledger: Ledger | None, clock: Clock) -> None:
        self.ledger, self.clock = ledger, clock

    @classmethod
    def next_status(cls, status: RoundStatus) -> RoundStatus | None:
        """The status after `status` (None after the last)."""
        index = cls.ORDER.index(status) + 1
        return cls.ORDER[index] if index < len(cls.ORDER) else None

    @classmethod
    def previous_status(cls, status: RoundStatus) -> RoundStatus | None:
        """The status a round reaches `status` from (None for the first)."""
        index = cls.ORDER.index(status)
        return cls.ORDER[index - 1] if index > 0 else None

    @classmethod
    def due(cls, round_: Round, now: datetime) -> RoundStatus | None:
        """The status the clock moves `round_` to at `now`, if any: closed at close time,
        scoring right after, resolved at resolve time."""
        wanted = cls.next_status(round_.status)
        if wanted is RoundStatus.CLOSED and now < round_.close_time:
            return None
        if wanted is RoundStatus.RESOLVED and (
            round_.resolve_time is None or now < round_.resolve_time
        ):
            return None
        return wanted

    def close(self, session: Session, round_: Round) -> bool:
        """open → closed: no more submissions or stake changes; the stakes are frozen at
        risk. False if already closed."""
        if not _advance(session, round_, RoundStatus.CLOSED):
            return False
        if self.ledger is not None:
            freeze_stakes(session, self.ledger, self.clock, round_)
        crash_point("close:before-commit")
        return True

    def start_scoring(self, session: Session, round_: Round) -> bool:
        """closed → scoring: daily scores may now be computed. False if already scoring."""
        return _advance(session, round_, RoundStatus.SCORING)

    def resolve(self, session: Session, round_: Round) -> bool:
        """scoring → resolved: the final score stands and the stakes are paid and burned.
        False if already resolved."""
        if not _advance(session, round_, RoundStatus.RESOLVED):
            return False
        crash_point("resolution:after-status")
        if self.ledger is not None:
            resolve_payouts(session, self.ledger, self.clock, round_)
            queue_chain_resolution(session, self.ledger, round_)
        crash_point("resolution:before-commit")
        return True

    def move_to(self, session: Session, round_: Round, wanted: RoundStatus) -> bool:
        """The step that reaches `wanted` (closed, scoring or resolved)."""
        if wanted is RoundStatus.CLOSED:
            return self.close(session, round_)
        if wanted is RoundStatus.SCORING:
            return self.start_scoring(session, round_)
        if wanted is RoundStatus.RESOLVED:
            return self.resolve(session, round_)
        raise ValueError(f"no step of the lifecycle reaches {wanted}")


def _advance(session: Session, round_: Round, wanted: RoundStatus) -> bool:
    expected = RoundLifecycle.previous_status(wanted)
    result = cast(
        CursorResult[Any],
        session.execute(
            update(Round)
            .where(Round.id == round_.id, Round.status == expected)
            .values(status=wanted)
            .execution_options(synchronize_session=False)
        ),
    )
    if result.rowcount == 1:
        set_committed_value(round_, "status", wanted)
        return True
    current = session.scalar(select(Round.status).where(Round.id == round_.id))
    if current is None:
        raise RoundNotFound(f"round {round_.number} no longer exists")
    set_committed_value(round_, "status", current)
    if current is wanted:
        return False
    tournament = session.scalar(
        select(Tournament.number).where(Tournament.id == round_.tournament_id)
    )
    raise RoundStateError(tournament or 0, round_.number, current, wanted)
