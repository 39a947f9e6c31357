"""Random histories of stakes through the services (Hypothesis stateful), on both databases.

Grants, stake increases and decreases, rounds opening (rows inserted directly: resolution
reads only submission status and lateness, `RoundScore` rows and `RoundTargets` days),
closing through the round lifecycle with the ledger, scoring days with random CORR and MMC
(negative ones and missing ones too), resolving through the resolve transition, sometimes
with a crash injected at a random step of the resolution and then retried, resolving again,
and payout mode switches. After every step: the books are sound, NMR is conserved, no
balance is negative, a wallet only ever receives NMR from a grant, an unstake with nothing
at risk, a release paid at its due round's resolution or a payout, every payout is the one
the rule gives the stored final scores (burns only on losing scores, rewards only on winning
ones) and replays, and the balances projection equals the journal.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from pathlib import Path
from typing import Any, ClassVar
from unittest import mock

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Engine, delete, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db import migrate
from crowdquant.db.base import Base
from crowdquant.db.models import (
    Account,
    Cadence,
    LedgerTransaction,
    Model,
    PayoutMode,
    Round,
    RoundPayout,
    RoundResult,
    RoundScore,
    RoundStake,
    RoundStatus,
    RoundTargets,
    Rules,
    StakeChange,
    StakeChangeKind,
    StakeChangeStatus,
    Submission,
    SubmissionStatus,
    Tournament,
)
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.ledger import (
    BURNED,
    GENESIS,
    TREASURY,
    AccountId,
    AccountKind,
    release,
    stake,
    wallet,
)
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, NMR_UNIT, Currency
from crowdquant.payouts import ClassicRule, rule_from_data, rule_to_data
from crowdquant.tournament import resolution
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.staking import (
    MAX_STAKE,
    InvalidStakeAmount,
    NotEnoughNmr,
    change_stake,
    grant_nmr,
)

NMR = Currency.NMR
OWNERS = (0, 0, 1)  # model i belongs to account OWNERS[i]
PEOPLE, MODELS = 2, len(OWNERS)
MAX_ROUNDS, MAX_DAYS = 6, 2
STEPS = 40
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

people = st.integers(0, PEOPLE - 1)
models = st.integers(0, MODELS - 1)
SHARES = st.sampled_from(["half", "tenth", "all", "all+1"])
"""A share of what the source holds (with one unit too many): exact edges are hit."""
amounts = st.one_of(SHARES, st.integers(1, 500 * NMR_UNIT))
scores = st.one_of(
    st.none(),
    st.floats(-0.3, 0.3, allow_nan=False, allow_infinity=False),
    st.sampled_from([0.0, -0.02, 0.02, 0.1, -0.1]),
)
thresholds = st.sampled_from([72_000 * NMR_UNIT, 300 * NMR_UNIT, 40 * NMR_UNIT])
submissions = st.sampled_from(["valid", "valid", "invalid", None])
crashes = st.sampled_from([None, *range(MODELS + 4)])
"""No crash, or one at that step of the resolution (planned, each payout, released,
recorded; past the last step nothing crashes)."""
HOLDERS = (
    AccountKind.TREASURY,
    AccountKind.WALLET,
    AccountKind.STAKE,
    AccountKind.RELEASE,
    AccountKind.BURNED,
)


@dataclass(frozen=True)
class Seen:
    """What the invariants read once per step."""

    balances: dict[AccountId, int]
    status: dict[uuid.UUID, RoundStatus]
    owner: dict[uuid.UUID, uuid.UUID]  # model → account
    changes: list[StakeChange]


class Crash(Exception):  # noqa: N818
    """An injected failure."""


def snapshot(sessions: sessionmaker[Session]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table."""
    with transaction(sessions) as session:
        return {
            table.name: sorted((tuple(row) for row in session.execute(table.select())), key=repr)
            for table in Base.metadata.sorted_tables
        }


def score_of(corr: float | None, mmc: float | None, hurdle: Fraction) -> Fraction | None:
    """½·CORR + 2·MMC − hurdle at the scores' reprs (a missing MMC counts 0; no CORR, no
    score)."""
    if corr is None:
        return None
    return Fraction(1, 2) * Fraction(repr(corr)) + 2 * Fraction(repr(mmc or 0.0)) - hurdle


class StakingMachine(RuleBasedStateMachine):
    databases: ClassVar[Callable[[], Iterator[sessionmaker[Session]]]]

    def __init__(self) -> None:
        super().__init__()
        self._database = self.databases()
        self.sessions = next(self._database)
        self.clock = ManualClock(START)
        self.ledger = SqlLedger(self.clock)
        self.lifecycle = RoundLifecycle(self.ledger, self.clock)
        self.keys = itertools.count()
        self.rounds: dict[uuid.UUID, RoundStatus] = {}  # by number, as the database has them
        self.days: dict[uuid.UUID, int] = {}  # days scored
        self.people = [uuid.uuid4() for _ in range(PEOPLE)]
        self.models = [uuid.uuid4() for _ in range(MODELS)]

    def teardown(self) -> None:
        self._database.close()

    # --- helpers -----------------------------------------------------------------------------

    def _tick(self) -> datetime:
        return self.clock.advance(timedelta(minutes=1))

    def _balance(self, account: AccountId) -> int:
        with transaction(self.sessions) as session:
            return self.ledger.balance(session, account, NMR)

    def _amount(self, held: int, spec: int | str) -> int:
        if isinstance(spec, int):
            return spec
        if spec == "all+1":
            return held + 1
        return max(1, {"half": held // 2, "tenth": held // 10, "all": held}[spec])

    def _rounds(self, status: RoundStatus) -> list[uuid.UUID]:
        return [round_id for round_id, now in self.rounds.items() if now is status]

    def _status(self, round_id: uuid.UUID) -> RoundStatus:
        with transaction(self.sessions) as session:
            return session.get_one(Round, round_id).status

    def _some(self, status: RoundStatus) -> bool:
        return status in self.rounds.values()

    def _unscored(self) -> list[uuid.UUID]:
        """The scoring rounds whose final day is not scored yet."""
        return [r for r in self._rounds(RoundStatus.SCORING) if self.days[r] < MAX_DAYS]

    def _resolvable(self) -> bool:
        scoring = self._rounds(RoundStatus.SCORING)
        return bool(scoring) and self.days[scoring[0]] > 0

    # --- setup -------------------------------------------------------------------------------

    @initialize(
        stakes=st.lists(st.integers(0, 400), min_size=MODELS, max_size=MODELS),
        threshold=thresholds,
        uploads=st.lists(submissions, min_size=MODELS, max_size=MODELS),
    )
    def start(self, stakes: list[int], threshold: int, uploads: list[str | None]) -> None:
        """The books, a tournament, its people and models; 1,000 NMR in every wallet, some
        staked on each model and the first round open, so that histories go deep."""
        now = self._tick()
        with transaction(self.sessions) as session:
            self.ledger.genesis(session)
            tournament = Tournament(
                number=8,
                name="classic",
                rules=Rules.CLASSIC,
                cadence=Cadence.DAILY,
                dataset_version="v1",
                settings={},
                created_at=now,
            )
            session.add(tournament)
            for k, account_id in enumerate(self.people):
                session.add(
                    Account(
                        id=account_id,
                        username=f"person{k}",
                        email=f"person{k}@example.org",
                        password_hash="-",
                        created_at=now,
                    )
                )
            session.flush()
            for k, model_id in enumerate(self.models):
                session.add(
                    Model(
                        id=model_id,
                        account_id=self.people[OWNERS[k]],
                        tournament=tournament,
                        name=f"model{k}",
                        created_at=now,
                    )
                )
            self.tournament_id = tournament.id
        for person in range(PEOPLE):
            self._grant(person, 1_000 * NMR_UNIT)
        for model, amount in enumerate(stakes):
            if amount:
                self._change(model, StakeChangeKind.INCREASE, amount * NMR_UNIT)
        self._open(threshold, uploads)

    # --- wallets and stakes ------------------------------------------------------------------

    @rule(
        person=people,
        amount=st.one_of(st.integers(1, 2_000 * NMR_UNIT), st.just("most"), st.just("all+1")),
    )
    def grant(self, person: int, amount: int | str) -> None:
        """A grant; "most" leaves the treasury a little, so later rewards are paid pro rata."""
        left = self._balance(TREASURY)
        if amount == "most":
            amount = max(1, left - 3 * NMR_UNIT)
        elif amount == "all+1":
            amount = left + 1
        self._grant(person, int(amount))

    def _grant(self, person: int, amount: int) -> None:
        short = self._balance(TREASURY) < amount
        try:
            with transaction(self.sessions) as session:
                account = session.get_one(Account, self.people[person])
                grant_nmr(session, self.ledger, account, amount, f"g{next(self.keys)}")
        except NotEnoughNmr:
            assert short
            return
        assert not short

    @rule(model=models, spec=amounts)
    def increase(self, model: int, spec: int | str) -> None:
        held = self._balance(wallet(self.people[OWNERS[model]]))
        amount = self._amount(held, spec)
        before = self._balance(stake(self.models[model]))
        try:
            change = self._change(model, StakeChangeKind.INCREASE, amount)
        except NotEnoughNmr:
            assert held < amount
            return
        except InvalidStakeAmount:
            assert amount > MAX_STAKE
            return
        assert held >= amount and change.status is StakeChangeStatus.DONE
        assert self._balance(stake(self.models[model])) == before + amount

    @rule(model=models, spec=amounts)
    def decrease(self, model: int, spec: int | str) -> None:
        held = self._balance(stake(self.models[model]))
        amount = self._amount(held, spec)
        due = self._last_round_at_risk(model)
        try:
            change = self._change(model, StakeChangeKind.DECREASE, amount)
        except NotEnoughNmr:
            assert held < amount
            return
        assert held >= amount
        assert change.due_round_id == due
        if due is None:
            assert (change.status, change.released) == (StakeChangeStatus.RELEASED, amount)
        else:
            assert change.status is StakeChangeStatus.PENDING

    def _change(self, model: int, kind: StakeChangeKind, amount: int) -> StakeChange:
        self._tick()
        with transaction(self.sessions) as session:
            found = session.get_one(Model, self.models[model])
            return change_stake(session, self.ledger, self.clock, found, kind, amount)

    def _last_round_at_risk(self, model: int) -> uuid.UUID | None:
        """The newest unresolved round in which the model has a stake at risk."""
        with transaction(self.sessions) as session:
            return session.scalar(
                select(Round.id)
                .join(RoundStake, RoundStake.round_id == Round.id)
                .where(
                    RoundStake.model_id == self.models[model],
                    Round.status != RoundStatus.RESOLVED,
                )
                .order_by(Round.number.desc())
                .limit(1)
            )

    @rule(model=models)
    def switch_payout_mode(self, model: int) -> None:
        with transaction(self.sessions) as session:
            found = session.get_one(Model, self.models[model])
            found.payout_mode = (
                PayoutMode.WALLET
                if found.payout_mode is PayoutMode.COMPOUND
                else PayoutMode.COMPOUND
            )

    # --- rounds ------------------------------------------------------------------------------

    @precondition(lambda self: len(self.rounds) < MAX_ROUNDS and not self._some(RoundStatus.OPEN))
    @rule(threshold=thresholds, uploads=st.lists(submissions, min_size=MODELS, max_size=MODELS))
    def open_round(self, threshold: int, uploads: list[str | None]) -> None:
        self._open(threshold, uploads)

    def _open(self, threshold: int, uploads: list[str | None]) -> None:
        now = self._tick()
        number = len(self.rounds) + 1
        with transaction(self.sessions) as session:
            round_ = Round(
                tournament_id=self.tournament_id,
                number=number,
                status=RoundStatus.OPEN,
                open_time=now,
                close_staking_time=now + timedelta(hours=number),
                close_time=now + timedelta(hours=number),
                resolve_time=now + timedelta(days=30),
                live_era=f"{number:04d}",
                dataset_version="v1",
                payout_rule=rule_to_data(ClassicRule(stake_threshold=threshold)),
            )
            session.add(round_)
            session.flush()
            for model_id, upload in zip(self.models, uploads, strict=True):
                if upload is not None:
                    session.add(self._submission(round_.id, model_id, upload == "valid", False))
            self.rounds[round_.id] = RoundStatus.OPEN
            self.days[round_.id] = 0

    def _submission(
        self, round_id: uuid.UUID, model_id: uuid.UUID, valid: bool, late: bool
    ) -> Submission:
        now = self.clock.now()
        return Submission(
            round_id=round_id,
            model_id=model_id,
            file_key=f"uploads/{uuid.uuid4().hex}.csv",
            filename="predictions.csv",
            status=SubmissionStatus.VALID if valid else SubmissionStatus.INVALID,
            late=late,
            n_rows=10 if valid else None,
            error=None if valid else "bad",
            created_at=now,
            validated_at=now,
        )

    @precondition(lambda self: self._some(RoundStatus.OPEN))
    @rule(late=st.lists(models, max_size=2))
    def close_round(self, late: list[int]) -> None:
        self._close(late)

    def _close(self, late: list[int]) -> None:
        """Through the lifecycle with the ledger: closed (stakes frozen), then scoring; then the
        `late` models upload (scored, never at risk)."""
        (round_id,) = self._rounds(RoundStatus.OPEN)
        self._tick()
        with transaction(self.sessions) as session:
            balances = self.ledger.balances(session, NMR)
            submitted = set(
                session.scalars(
                    select(Submission.model_id).where(
                        Submission.round_id == round_id,
                        Submission.status == SubmissionStatus.VALID,
                        Submission.late.is_(False),
                    )
                )
            )
            round_ = session.get_one(Round, round_id)
            assert self.lifecycle.close(session, round_)
            assert self.lifecycle.start_scoring(session, round_)
            frozen = {
                row.model_id: row.at_risk
                for row in session.scalars(
                    select(RoundStake).where(RoundStake.round_id == round_id)
                )
            }
        self.rounds[round_id] = RoundStatus.SCORING
        expected = {m: balances.get(stake(m), 0) for m in submitted}
        assert frozen == {m: amount for m, amount in expected.items() if amount > 0}
        self._tick()
        with transaction(self.sessions) as session:
            for model in late:
                session.add(self._submission(round_id, self.models[model], True, True))

    @precondition(lambda self: self._unscored())
    @rule(data=st.data())
    def score_a_day(self, data: st.DataObject) -> None:
        self._score(data.draw(st.sampled_from(self._unscored())), data)

    def _score(self, round_id: uuid.UUID, data: st.DataObject) -> None:
        """The round's next day: targets recorded, CORR and MMC for every scored model."""
        now = self._tick()
        with transaction(self.sessions) as session:
            days = session.scalars(
                select(RoundTargets.day).where(RoundTargets.round_id == round_id)
            ).all()
            day = max(days, default=0) + 1
            self.days[round_id] = day
            session.add(
                RoundTargets(
                    round_id=round_id,
                    day=day,
                    storage_key=f"targets/{day}",
                    sha256="0" * 64,
                    recorded_at=now,
                )
            )
            scored = session.execute(
                select(Submission.model_id, Submission.id, Submission.late)
                .where(Submission.round_id == round_id, Submission.status == SubmissionStatus.VALID)
                .order_by(Submission.late, Submission.created_at)
            ).all()
            seen: set[uuid.UUID] = set()
            for model_id, submission_id, late in scored:
                if model_id in seen:
                    continue
                seen.add(model_id)
                for metric in ("corr", "mmc"):
                    session.add(
                        RoundScore(
                            round_id=round_id,
                            model_id=model_id,
                            submission_id=submission_id,
                            metric=metric,
                            day=day,
                            value=data.draw(scores),
                            late=late,
                            scoring_version="test",
                            computed_at=now,
                        )
                    )

    @precondition(lambda self: self._resolvable())
    @rule(crash_at=crashes)
    def resolve(self, crash_at: int | None) -> None:
        self._resolve_oldest(crash_at)

    def _resolve_oldest(self, crash_at: int | None) -> None:
        """The oldest scoring round resolves; a crash at step `crash_at` of the resolution
        leaves the database as it was, and the retry resolves it."""
        round_id = self._rounds(RoundStatus.SCORING)[0]
        self.rounds[round_id] = RoundStatus.RESOLVED
        self._tick()
        if crash_at is not None:
            before = snapshot(self.sessions)
            try:
                with self._crashing(crash_at):
                    self._resolve(round_id)
            except Crash:
                assert snapshot(self.sessions) == before
                assert self._status(round_id) is RoundStatus.SCORING
            else:
                return
        self._resolve(round_id)
        assert self._status(round_id) is RoundStatus.RESOLVED

    def _resolve(self, round_id: uuid.UUID) -> bool:
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, round_id)
            return self.lifecycle.resolve(session, round_)

    @contextmanager
    def _crashing(self, crash_at: int) -> Iterator[None]:
        original = resolution.resolve_payouts
        steps = itertools.count()

        def checkpoint(step: str) -> None:
            if next(steps) == crash_at:
                raise Crash(step)

        def crashing(*args: Any, **kwargs: Any) -> Any:
            return original(*args, **kwargs, checkpoint=checkpoint)

        with mock.patch.object(resolution, "resolve_payouts", crashing):
            yield

    @rule(data=st.data())
    def the_scheduler_ticks(self, data: st.DataObject) -> None:
        """A day of the lifecycle at once, each part maybe: the open round closes, scoring
        rounds score a day, the oldest scored one resolves, and a new round opens."""
        if self._some(RoundStatus.OPEN) and data.draw(st.booleans()):
            self._close(data.draw(st.lists(models, max_size=1)))
        for round_id in self._unscored():
            if data.draw(st.booleans()):
                self._score(round_id, data)
        if self._resolvable() and data.draw(st.booleans()):
            self._resolve_oldest(data.draw(crashes))
        if len(self.rounds) < MAX_ROUNDS and not self._some(RoundStatus.OPEN):
            uploads = data.draw(st.lists(submissions, min_size=MODELS, max_size=MODELS))
            self._open(data.draw(thresholds), uploads)

    @precondition(lambda self: self._some(RoundStatus.RESOLVED))
    @rule(data=st.data())
    def resolve_again(self, data: st.DataObject) -> None:
        round_id = data.draw(st.sampled_from(self._rounds(RoundStatus.RESOLVED)))
        before = snapshot(self.sessions)
        assert self._resolve(round_id) is False
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, round_id)
            recorded = resolution.resolve_payouts(session, self.ledger, self.clock, round_)
            assert recorded.round_id == round_id
        assert snapshot(self.sessions) == before

    # --- after every step ----------------------------------------------------------------------

    @invariant()
    def the_books_and_the_rules_hold(self) -> None:
        """Every check below in one read of the database, rolled back at the end (the
        balances projection is rebuilt from the journal to compare)."""
        with self.sessions() as session:
            try:
                seen = Seen(
                    balances=self.ledger.balances(session, NMR),
                    status=dict(session.execute(select(Round.id, Round.status)).all()),
                    owner=dict(session.execute(select(Model.id, Model.account_id)).all()),
                    changes=list(session.scalars(select(StakeChange))),
                )
                self._check_books(session, seen)
                self._check_wallet_receipts(session, seen)
                self._check_pending_releases(session, seen)
                for result in session.scalars(select(RoundResult)):
                    self._check_round(session, result)
                assert self.ledger.rebuild_projection(session) == 0  # projection == journal
            finally:
                session.rollback()

    def _check_books(self, session: Session, seen: Seen) -> None:
        """The audit is sound, NMR is conserved and no balance is negative."""
        report = self.ledger.verify(session)
        assert report.sound, [str(problem) for problem in report.problems]
        burned = seen.balances.get(BURNED, 0)
        circulating = sum(
            amount for account, amount in seen.balances.items() if account not in (GENESIS, BURNED)
        )
        assert circulating == GENESIS_SUPPLY - burned == report.circulating
        held = dict.fromkeys(HOLDERS, 0)
        for account, amount in seen.balances.items():
            if account != GENESIS:
                assert amount >= 0, account
                held[account.kind] += amount
        assert sum(held.values()) == GENESIS_SUPPLY  # treasury, wallets, stakes, releases, burned

    def _check_wallet_receipts(self, session: Session, seen: Seen) -> None:
        """A wallet receives NMR only from a grant, an unstake with nothing at risk, a release
        at its due round's resolution, or a payout; it pays only into its models' stakes."""
        changes = {change.event_key: change for change in seen.changes}
        by_id = {str(change.id): change for change in seen.changes}
        for person in self.people:
            for entry in self.ledger.history(session, wallet(person), NMR):
                kind, _, rest = entry.event_key.partition(":")
                if kind == "grant":
                    assert entry.amount > 0
                elif kind == "stake":  # an increase, or a decrease with nothing at risk
                    change = changes[entry.event_key]
                    assert seen.owner[change.model_id] == person
                    if entry.amount < 0:
                        assert change.kind is StakeChangeKind.INCREASE
                    else:
                        assert change.kind is StakeChangeKind.DECREASE
                        assert change.due_round_id is None
                        assert change.status is StakeChangeStatus.RELEASED
                elif kind == "release":  # at the resolution of the round it waited for
                    change = by_id[rest]
                    assert entry.amount > 0 and seen.owner[change.model_id] == person
                    assert change.status is StakeChangeStatus.RELEASED
                    assert change.due_round_id is not None
                    assert seen.status[change.due_round_id] is RoundStatus.RESOLVED
                elif kind == "payout":
                    round_id, _, model_id = rest.partition(":")
                    assert entry.amount > 0
                    assert seen.owner[uuid.UUID(model_id)] == person
                    assert seen.status[uuid.UUID(round_id)] is RoundStatus.RESOLVED
                else:
                    raise AssertionError(f"{entry.event_key} paid a wallet")

    def _check_pending_releases(self, session: Session, seen: Seen) -> None:
        """Unstaked NMR waits, burnable, until its due round resolves; then it is paid once."""
        posted = set(
            session.scalars(
                select(LedgerTransaction.event_key).where(
                    LedgerTransaction.event_key.startswith("release:")
                )
            )
        )
        pending: dict[uuid.UUID, int] = dict.fromkeys(self.models, 0)
        for change in seen.changes:
            if change.kind is StakeChangeKind.INCREASE:
                assert change.status is StakeChangeStatus.DONE
            elif change.due_round_id is None:
                assert change.status is StakeChangeStatus.RELEASED
                assert change.released == change.amount
            elif seen.status[change.due_round_id] is RoundStatus.RESOLVED:
                assert change.status is StakeChangeStatus.RELEASED
                assert change.released is not None and 0 <= change.released <= change.amount
                assert (f"release:{change.id}" in posted) == (change.released > 0)
            else:
                assert change.status is StakeChangeStatus.PENDING
                assert f"release:{change.id}" not in posted
                pending[change.model_id] += change.amount
        for model_id, waiting in pending.items():
            held = seen.balances.get(release(model_id), 0)
            assert held <= waiting  # burns may have taken some
            if not waiting:
                assert held == 0

    def _check_round(self, session: Session, result: RoundResult) -> None:
        round_ = session.get_one(Round, result.round_id)
        rule = rule_from_data(round_.payout_rule)
        assert isinstance(rule, ClassicRule)
        last = max(
            session.scalars(select(RoundTargets.day).where(RoundTargets.round_id == round_.id)),
            default=0,
        )
        final = {
            (row.model_id, row.metric): row.value
            for row in session.scalars(
                select(RoundScore).where(
                    RoundScore.round_id == round_.id,
                    RoundScore.day == last,
                    RoundScore.late.is_(False),
                )
            )
        }
        at_risk = {
            row.model_id: row.at_risk
            for row in session.scalars(select(RoundStake).where(RoundStake.round_id == round_.id))
            if row.at_risk > 0
        }
        paid = {
            row.model_id: row
            for row in session.scalars(select(RoundPayout).where(RoundPayout.round_id == round_.id))
        }
        assert set(paid) == set(at_risk)
        total = sum(at_risk.values())
        factor = min(Fraction(1), Fraction(rule.stake_threshold, total)) if total else 1
        clip = Fraction(rule.clip)
        unscaled = {}
        for model_id, amount in at_risk.items():
            score = score_of(
                final.get((model_id, "corr")), final.get((model_id, "mmc")), Fraction(rule.hurdle)
            )
            row = paid[model_id]
            assert row.at_risk == amount
            # a burn only on a score below the hurdle, a reward only on one above it
            if row.nmr < 0:
                assert score is not None and score < 0
            if row.nmr > 0:
                assert score is not None and score > 0
            unscaled[model_id] = (
                0 if score is None else int(amount * max(-clip, min(clip, factor * score)))
            )
        rewards = {m: amount for m, amount in unscaled.items() if amount > 0}
        available = sum(rewards.values()) if result.nmr_scaled_to is None else result.nmr_scaled_to
        assert available <= sum(rewards.values())
        for model_id, amount in unscaled.items():
            row = paid[model_id]
            if amount > 0:
                assert row.nmr == amount * available // sum(rewards.values())
            elif "burn_cap" in row.inputs:
                assert -row.nmr == row.inputs["burn_cap"] <= -amount
            else:
                assert row.nmr == amount
        assert result.nmr_paid == sum(row.nmr for row in paid.values() if row.nmr > 0)
        assert result.nmr_burned == -sum(row.nmr for row in paid.values() if row.nmr < 0)
        assert (result.stakers, result.at_risk) == (len(at_risk), total)
        assert result.payout_factor is not None
        assert abs(Fraction(result.payout_factor) - factor) < Fraction(1, 10**20)
        assert resolution.replay_payouts(session, round_) == []


def _sqlite_databases(tmp_path: Path) -> Callable[[], Iterator[sessionmaker[Session]]]:
    """A fresh copy of one migrated database file per example."""
    template = tmp_path / "template.db"
    migrate.upgrade(f"sqlite:///{template}")
    count = itertools.count()

    def databases() -> Iterator[sessionmaker[Session]]:
        path = tmp_path / f"example{next(count)}.db"
        with sqlite3.connect(template) as source, sqlite3.connect(path) as target:
            source.backup(target)
        engine = make_engine(f"sqlite:///{path}")
        try:
            yield session_factory(engine)
        finally:
            engine.dispose()
            path.unlink()

    return databases


def _emptied_databases(engine: Engine) -> Callable[[], Iterator[sessionmaker[Session]]]:
    """One migrated database, every row deleted before each example."""
    sessions = session_factory(engine)

    def databases() -> Iterator[sessionmaker[Session]]:
        with transaction(sessions) as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(delete(table))
        yield sessions

    return databases


def test_random_histories_of_stakes_keep_every_invariant(database_url: str, tmp_path: Path) -> None:
    """Many short histories on SQLite (a database file per example), a few on PostgreSQL."""
    engine: Engine | None = None
    if database_url.startswith("sqlite"):
        databases, examples = _sqlite_databases(tmp_path), 25
    else:
        migrate.upgrade(database_url)
        engine = make_engine(database_url)
        databases, examples = _emptied_databases(engine), 6
    machine = type("Machine", (StakingMachine,), {"databases": staticmethod(databases)})
    try:
        run_state_machine_as_test(
            machine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=STEPS,
                deadline=None,
                database=None,
                suppress_health_check=[HealthCheck.too_slow],
            ),
        )
    finally:
        if engine is not None:
            engine.dispose()
