"""Stakes through the services, on both databases: grants, increases and decreases, the
freeze at a round's close, pending releases paid back at their round's resolution, burns,
amounts as people write them, and the 2017 rules' per-round stakes with a confidence."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import (
    Account,
    Cadence,
    Model,
    Round,
    RoundScore,
    RoundStake,
    RoundTargets,
    Rules,
    StakeChange,
    StakeChangeKind,
    StakeChangeStatus,
    Submission,
    SubmissionStatus,
)
from crowdquant.db.session import transaction
from crowdquant.ledger import BURNED, TREASURY, AccountId, release, stake, wallet
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, NMR_UNIT, Currency
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.lifecycle import RoundLifecycle
from crowdquant.tournament.models import create_model
from crowdquant.tournament.resolution import resolve_payouts
from crowdquant.tournament.rounds import (
    FeedPublisher,
    open_round,
)
from crowdquant.tournament.staking import (
    MAX_STAKE,
    InvalidStakeAmount,
    NoRoundToStake,
    NotEnoughNmr,
    RoundClosing,
    StakeError,
    change_stake,
    freeze_stakes,
    grant_nmr,
    parse_nmr,
    stake_on_round,
)
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament

from .live_market import MONDAY, feed_publisher
from .scored_round import CHEAP

CLASSIC, LEGACY = 8, 11
INCREASE, DECREASE = StakeChangeKind.INCREASE, StakeChangeKind.DECREASE
OWNERS = {
    "steady": "alice",  # classic tournament 8 ...
    "spare": "alice",
    "late": "bob",
    "broken": "bob",
    "absent": "bob",
    "oldtimer": "alice",  # ... and the 2017-rules tournament 11
    "rival": "bob",
}
LEGACY_MODELS = {"oldtimer", "rival"}
MONDAY_OPEN = MONDAY.replace(minute=5)  # the weekend's daily round and the weekly round are open
TUESDAY_OPEN = datetime(2001, 1, 9, 12, 5, tzinfo=UTC)  # the next daily round is open


def nmr(amount: str | int) -> int:
    """NMR as a person writes it, in 10^-18 units."""
    return int(Decimal(amount) * NMR_UNIT)


@dataclass
class Stakes:
    """A classic daily tournament and a 2017-rules weekly one, two owners, a started ledger."""

    sessions: sessionmaker[Session]
    clock: ManualClock
    ledger: SqlLedger
    publisher: FeedPublisher
    accounts: dict[str, uuid.UUID]
    models: dict[str, uuid.UUID]

    # --- the books ---------------------------------------------------------------------------

    def wallet(self, owner: str) -> AccountId:
        return wallet(self.accounts[owner])

    def stake(self, name: str) -> AccountId:
        return stake(self.models[name])

    def release(self, name: str) -> AccountId:
        return release(self.models[name])

    def balance(self, account: AccountId) -> int:
        with transaction(self.sessions) as session:
            return self.ledger.balance(session, account, Currency.NMR)

    def grant(self, owner: str, amount: int, reference: str | None = None) -> None:
        with transaction(self.sessions) as session:
            account = session.get_one(Account, self.accounts[owner])
            grant_nmr(session, self.ledger, account, amount, reference or str(uuid.uuid4()))

    def change(self, name: str, kind: StakeChangeKind, amount: int) -> StakeChange:
        with transaction(self.sessions) as session:
            model = session.get_one(Model, self.models[name])
            return change_stake(session, self.ledger, self.clock, model, kind, amount)

    def stake_on(self, name: str, amount: int, confidence: str | Decimal) -> RoundStake:
        with transaction(self.sessions) as session:
            model = session.get_one(Model, self.models[name])
            return stake_on_round(
                session, self.ledger, self.clock, model, amount, Decimal(confidence)
            )

    # --- rounds ------------------------------------------------------------------------------

    def open(self, tournament: int) -> uuid.UUID:
        with transaction(self.sessions) as session:
            found = get_tournament(session, tournament)
            return open_round(session, self.clock, found, self.publisher).id

    def submit(self, round_id: uuid.UUID, name: str, *, valid: bool = True) -> Submission:
        """An upload of `name` to the round: valid, or with ids the round does not have."""
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, round_id)
            model = session.get_one(Model, self.models[name])
            live_ids = live_ids_of_round(self.publisher.storage, round_)
            ids = live_ids if valid else pd.Index([f"nobody{k}" for k in range(len(live_ids))])
            values = pd.Series(np.linspace(0.1, 0.9, len(ids)), index=ids, name="prediction")
            data = values.rename_axis("id").reset_index().to_csv(index=False).encode()
            return submit_predictions(
                session,
                self.clock,
                self.publisher.storage,
                model.account,
                model.id,
                round_,
                "predictions.csv",
                data,
                live_ids=live_ids,
            )

    def close(self, round_id: uuid.UUID) -> int:
        """The round's close as the scheduler makes it: closed, stakes frozen, scoring."""
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, round_id)
            self.clock.set(max(self.clock.now(), round_.close_time))
            RoundLifecycle(None, self.clock).close(session, round_)
            frozen = freeze_stakes(session, self.ledger, self.clock, round_)
            RoundLifecycle(None, self.clock).start_scoring(session, round_)
            return frozen

    def score(self, round_id: uuid.UUID, scores: dict[str, tuple[float, float]]) -> None:
        """Final-day CORR and MMC for some models, as scoring would store them."""
        with transaction(self.sessions) as session:
            now = self.clock.now()
            session.add(
                RoundTargets(
                    round_id=round_id, day=1, storage_key="t", sha256="0" * 64, recorded_at=now
                )
            )
            for name, values in scores.items():
                submission_id = session.scalars(
                    select(Submission.id).where(
                        Submission.round_id == round_id,
                        Submission.model_id == self.models[name],
                    )
                ).one()
                for metric, value in zip(("corr", "mmc"), values, strict=True):
                    session.add(
                        RoundScore(
                            round_id=round_id,
                            model_id=self.models[name],
                            submission_id=submission_id,
                            metric=metric,
                            day=1,
                            value=value,
                            late=False,
                            scoring_version="test",
                            computed_at=now,
                        )
                    )

    def resolve(self, round_id: uuid.UUID) -> None:
        with transaction(self.sessions) as session:
            round_ = session.get_one(Round, round_id)
            RoundLifecycle(None, self.clock).resolve(session, round_)
            resolve_payouts(session, self.ledger, self.clock, round_)

    # --- reading -----------------------------------------------------------------------------

    def at_risk(self, round_id: uuid.UUID) -> dict[str, tuple[int, Decimal | None]]:
        """The round's stakes by model name: (at risk, confidence)."""
        names = {model_id: name for name, model_id in self.models.items()}
        with transaction(self.sessions) as session:
            rows = session.scalars(select(RoundStake).where(RoundStake.round_id == round_id))
            return {names[row.model_id]: (row.at_risk, row.confidence) for row in rows}

    def stake_change(self, change_id: uuid.UUID) -> StakeChange:
        with transaction(self.sessions) as session:
            return session.get_one(StakeChange, change_id)

    def changes(self, name: str) -> set[tuple[StakeChangeKind, int, StakeChangeStatus]]:
        with transaction(self.sessions) as session:
            rows = session.scalars(
                select(StakeChange).where(StakeChange.model_id == self.models[name])
            )
            return {(row.kind, row.amount, row.status) for row in rows}

    def written(self) -> tuple[Any, ...]:
        """Everything a stake request could write: the books and the stake rows."""
        with transaction(self.sessions) as session:
            return tuple(
                sorted((tuple(row) for row in session.execute(text(query))), key=repr)
                for query in (
                    "SELECT account, currency, balance FROM ledger_balances",
                    "SELECT sequence, event_key FROM ledger_transactions",
                    "SELECT id, model_id, kind, amount, status FROM stake_changes",
                    "SELECT round_id, model_id, at_risk, confidence FROM round_stakes",
                )
            )


@pytest.fixture
def book(sessions: sessionmaker[Session], tmp_path: Path) -> Stakes:
    clock = ManualClock(MONDAY_OPEN)
    ledger = SqlLedger(clock)
    with transaction(sessions) as session:
        ledger.genesis(session)
        create_tournament(session, clock, CLASSIC, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        create_tournament(session, clock, LEGACY, "legacy", Rules.RULES2017, Cadence.WEEKLY, "v2")
        accounts = {
            name: sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            for name in ("alice", "bob")
        }
        models = {
            name: create_model(
                session,
                clock,
                accounts[owner],
                LEGACY if name in LEGACY_MODELS else CLASSIC,
                name,
            ).id
            for name, owner in OWNERS.items()
        }
    return Stakes(
        sessions,
        clock,
        ledger,
        feed_publisher(tmp_path / "files"),
        {name: account.id for name, account in accounts.items()},
        models,
    )


def staked_and_closed(book: Stakes, amount: int) -> uuid.UUID:
    """`steady` staked `amount` and submitted to the classic round, which then closed."""
    book.grant("alice", amount)
    book.change("steady", INCREASE, amount)
    round_id = book.open(CLASSIC)
    book.submit(round_id, "steady")
    book.close(round_id)
    return round_id


# --- wallets ---------------------------------------------------------------------------------


def test_a_grant_moves_nmr_from_the_treasury_to_the_wallet(book: Stakes) -> None:
    book.grant("alice", nmr(250))
    assert book.balance(book.wallet("alice")) == nmr(250)
    assert book.balance(TREASURY) == GENESIS_SUPPLY - nmr(250)


def test_a_grant_is_made_once_per_reference(book: Stakes) -> None:
    book.grant("alice", nmr(10), "welcome")
    book.grant("alice", nmr(10), "welcome")
    assert book.balance(book.wallet("alice")) == nmr(10)


@pytest.mark.parametrize("amount", [0, -1])
def test_a_grant_of_nothing_is_refused(book: Stakes, amount: int) -> None:
    with pytest.raises(InvalidStakeAmount):
        book.grant("alice", amount)


def test_a_grant_beyond_the_treasury_is_refused(book: Stakes) -> None:
    with pytest.raises(NotEnoughNmr, match="treasury"):
        book.grant("alice", GENESIS_SUPPLY + 1)
    assert book.balance(book.wallet("alice")) == 0


# --- classic: increases and decreases ----------------------------------------------------------


def test_an_increase_moves_nmr_from_the_wallet_into_the_stake(book: Stakes) -> None:
    book.grant("alice", nmr(100))
    change = book.change("steady", INCREASE, nmr("37.5"))
    assert (change.kind, change.amount, change.status) == (
        INCREASE,
        nmr("37.5"),
        StakeChangeStatus.DONE,
    )
    assert book.balance(book.wallet("alice")) == nmr("62.5")
    assert book.balance(book.stake("steady")) == nmr("37.5")
    with transaction(book.sessions) as session:
        posted = book.ledger.find(session, change.event_key)
    assert posted is not None and posted.amount(book.stake("steady")) == nmr("37.5")


def test_an_increase_beyond_the_wallet_is_refused_and_writes_nothing(book: Stakes) -> None:
    book.grant("alice", nmr(10))
    book.change("steady", INCREASE, nmr(4))
    before = book.written()
    with transaction(book.sessions) as session:  # the caller goes on and commits
        model = session.get_one(Model, book.models["steady"])
        with pytest.raises(NotEnoughNmr, match="wallet"):
            change_stake(session, book.ledger, book.clock, model, INCREASE, nmr(6) + 1)
    assert book.written() == before


@pytest.mark.parametrize("amount", [0, -1, MAX_STAKE + 1])
def test_a_change_of_no_amount_or_more_than_exists_is_refused(book: Stakes, amount: int) -> None:
    book.grant("alice", nmr(10))
    before = book.written()
    for kind in (INCREASE, DECREASE):
        with pytest.raises(InvalidStakeAmount):
            book.change("steady", kind, amount)
    assert book.written() == before


def test_a_decrease_with_no_round_at_risk_goes_straight_to_the_wallet(book: Stakes) -> None:
    book.grant("alice", nmr(100))
    book.change("steady", INCREASE, nmr(100))
    change = book.change("steady", DECREASE, nmr(30))
    assert (change.status, change.due_round_id, change.released) == (
        StakeChangeStatus.RELEASED,
        None,
        nmr(30),
    )
    assert change.released_at == book.clock.now()
    assert book.balance(book.wallet("alice")) == nmr(30)
    assert book.balance(book.stake("steady")) == nmr(70)
    assert book.balance(book.release("steady")) == 0


def test_a_decrease_while_the_round_is_still_open_is_not_held(book: Stakes) -> None:
    """Stakes are at risk from a round's close: before it, nothing holds them back."""
    book.grant("alice", nmr(100))
    book.change("steady", INCREASE, nmr(100))
    round_id = book.open(CLASSIC)
    book.submit(round_id, "steady")
    change = book.change("steady", DECREASE, nmr(100))
    assert change.status is StakeChangeStatus.RELEASED
    assert book.balance(book.wallet("alice")) == nmr(100)
    assert book.close(round_id) == 0


def test_a_decrease_beyond_the_stake_is_refused_and_writes_nothing(book: Stakes) -> None:
    staked_and_closed(book, nmr(50))
    before = book.written()
    with pytest.raises(NotEnoughNmr, match="stake"):
        book.change("steady", DECREASE, nmr(50) + 1)
    assert book.written() == before


def test_a_decrease_after_a_close_waits_for_that_rounds_resolution(book: Stakes) -> None:
    round_id = staked_and_closed(book, nmr(100))
    change = book.change("steady", DECREASE, nmr(40))
    assert (change.status, change.due_round_id, change.released) == (
        StakeChangeStatus.PENDING,
        round_id,
        None,
    )
    assert book.balance(book.stake("steady")) == nmr(60)
    assert book.balance(book.release("steady")) == nmr(40)
    assert book.balance(book.wallet("alice")) == 0  # not before the round resolves

    book.resolve(round_id)  # unscored: no payout, the release is due
    assert book.balance(book.wallet("alice")) == nmr(40)
    assert book.balance(book.release("steady")) == 0
    paid = book.stake_change(change.id)
    assert (paid.status, paid.released, paid.released_at) == (
        StakeChangeStatus.RELEASED,
        nmr(40),
        book.clock.now(),
    )


def test_a_decrease_waits_for_the_last_round_it_was_at_risk_in(book: Stakes) -> None:
    first = staked_and_closed(book, nmr(100))
    book.clock.set(TUESDAY_OPEN)
    second = book.open(CLASSIC)
    book.submit(second, "steady")
    book.close(second)
    change = book.change("steady", DECREASE, nmr(25))
    assert change.due_round_id == second

    book.resolve(first)
    assert book.stake_change(change.id).status is StakeChangeStatus.PENDING
    assert book.balance(book.wallet("alice")) == 0
    book.resolve(second)
    assert book.stake_change(change.id).status is StakeChangeStatus.RELEASED
    assert book.balance(book.wallet("alice")) == nmr(25)


def test_a_release_waits_for_an_older_round_still_unresolved(book: Stakes) -> None:
    """Round 2 resolves before round 1 (whose resolution failed, say): a release requested
    after both closed is still at risk in round 1, so it waits for round 1."""
    first = staked_and_closed(book, nmr(100))
    book.clock.set(TUESDAY_OPEN)
    second = book.open(CLASSIC)
    book.submit(second, "steady")
    book.close(second)
    change = book.change("steady", DECREASE, nmr(25))

    book.resolve(second)
    waiting = book.stake_change(change.id)
    assert (waiting.status, waiting.due_round_id) == (StakeChangeStatus.PENDING, first)
    assert book.balance(book.wallet("alice")) == 0
    book.resolve(first)
    assert book.stake_change(change.id).status is StakeChangeStatus.RELEASED
    assert book.balance(book.wallet("alice")) == nmr(25)


def test_a_burn_takes_from_the_stake_then_from_the_pending_release(book: Stakes) -> None:
    """100 at risk, 98 unstaked after the close, a clipped loss of 5%: 2 from the stake, 3
    from the release, and the release pays back the 95 left."""
    round_id = staked_and_closed(book, nmr(100))
    change = book.change("steady", DECREASE, nmr(98))
    book.score(round_id, {"steady": (-0.5, -0.1)})
    book.resolve(round_id)
    assert book.balance(BURNED) == nmr(5)
    assert book.balance(book.stake("steady")) == 0
    assert book.balance(book.release("steady")) == 0
    assert book.balance(book.wallet("alice")) == nmr(95)
    paid = book.stake_change(change.id)
    assert (paid.status, paid.amount, paid.released) == (
        StakeChangeStatus.RELEASED,
        nmr(98),
        nmr(95),
    )


# --- classic: the freeze at close ----------------------------------------------------------


def test_the_close_freezes_only_stakes_with_a_valid_on_time_submission(book: Stakes) -> None:
    book.grant("alice", nmr(100))
    book.grant("bob", nmr(100))
    for name, amount in {"steady": 60, "late": 30, "broken": 20, "absent": 10}.items():
        book.change(name, INCREASE, nmr(amount))
    round_id = book.open(CLASSIC)
    book.submit(round_id, "steady")
    book.submit(round_id, "spare")  # on time, but nothing staked
    book.submit(round_id, "broken", valid=False)
    with transaction(book.sessions) as session:
        round_ = session.get_one(Round, round_id)
        book.clock.set(round_.close_time)
        RoundLifecycle(None, book.clock).close(session, round_)
    late = book.submit(round_id, "late")
    assert late.late and late.status is SubmissionStatus.VALID

    with transaction(book.sessions) as session:
        round_ = session.get_one(Round, round_id)
        assert freeze_stakes(session, book.ledger, book.clock, round_) == 1
    assert book.at_risk(round_id) == {"steady": (nmr(60), None)}


@pytest.mark.parametrize(("kind", "amount"), [(INCREASE, nmr(40)), (DECREASE, nmr(60))])
def test_a_change_after_the_close_time_before_the_tick_does_not_count(
    book: Stakes, kind: StakeChangeKind, amount: int
) -> None:
    """The stakes at risk are those at the round's close time: a change made after it, while
    the scheduler's tick that closes the round has not run, is refused and changes nothing;
    once the round is closed the change is taken, for the next rounds."""
    book.grant("alice", nmr(100))
    book.change("steady", INCREASE, nmr(60))
    round_id = book.open(CLASSIC)
    book.submit(round_id, "steady")
    with transaction(book.sessions) as session:
        book.clock.set(session.get_one(Round, round_id).close_time + timedelta(seconds=1))
    before = book.written()
    with pytest.raises(RoundClosing, match="stakes are being frozen"):
        book.change("steady", kind, amount)
    assert book.written() == before

    assert book.close(round_id) == 1  # the tick
    assert book.at_risk(round_id) == {"steady": (nmr(60), None)}
    book.change("steady", kind, amount)
    assert book.at_risk(round_id) == {"steady": (nmr(60), None)}


def test_stakes_are_frozen_once(book: Stakes) -> None:
    round_id = staked_and_closed(book, nmr(60))
    book.grant("alice", nmr(15))
    book.change("steady", INCREASE, nmr(15))
    with transaction(book.sessions) as session:
        round_ = session.get_one(Round, round_id)
        assert freeze_stakes(session, book.ledger, book.clock, round_) == 0
    assert book.at_risk(round_id) == {"steady": (nmr(60), None)}


def test_an_increase_counts_from_the_next_close(book: Stakes) -> None:
    first = staked_and_closed(book, nmr(60))
    book.grant("alice", nmr(15))
    book.change("steady", INCREASE, nmr(15))
    book.clock.set(TUESDAY_OPEN)
    second = book.open(CLASSIC)
    book.submit(second, "steady")
    book.close(second)
    assert book.at_risk(first) == {"steady": (nmr(60), None)}
    assert book.at_risk(second) == {"steady": (nmr(75), None)}


# --- amounts at the edge ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "units"),
    [
        ("1.5", 15 * 10**17),
        ("1,000.25", 100025 * 10**16),
        ("1,234,567", 1_234_567 * NMR_UNIT),
        ("  6.75 ", 675 * 10**16),
        ("0.000000000000000001", 1),
        ("11000000", MAX_STAKE),
        (3, 3 * NMR_UNIT),
        (0.1, 10**17),
        (Decimal("6.750"), 675 * 10**16),
    ],
)
def test_parse_nmr_reads_amounts_as_people_write_them(written: Any, units: int) -> None:
    assert parse_nmr(written) == units


@pytest.mark.parametrize(
    "written",
    [
        "0",
        "0.0",
        "-1",
        "-0.5",
        "0.0000000000000000001",  # 19 decimals
        "1.0000000000000000001",
        "11000000.000000000000000001",  # more than the supply
        "1e30",
        "1e-3",  # exponents are refused, however small or large the amount
        "2.5E2",
        "1e999999",
        "",
        "abc",
        "1.5 NMR",
        "1,5",  # a decimal comma: not 15 NMR
        "12,34.5",
        "1" * 65,
        "NaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_parse_nmr_refuses_what_is_not_a_positive_amount(written: str) -> None:
    with pytest.raises(InvalidStakeAmount):
        parse_nmr(written)


@pytest.mark.parametrize(
    "written",
    [
        "1234567.1234567890123456789999",  # 22 decimals: read as ...789012345679
        "10000000.000000000000000000001",  # 21 decimals: read as 10,000,000
    ],
)
def test_parse_nmr_refuses_more_than_18_decimals_on_large_amounts(written: str) -> None:
    """Seven or eight whole digits and 21 or more decimals make more than the 28 significant
    digits of Decimal's default context: the amount must still be refused, not rounded."""
    with pytest.raises(InvalidStakeAmount):
        parse_nmr(written)


# --- 2017 rules: a stake on the open round, with a confidence --------------------------------


def legacy_round(book: Stakes, *names: str) -> uuid.UUID:
    """The 2017 round open, both owners funded, `names` submitted to it."""
    book.grant("alice", nmr(100))
    book.grant("bob", nmr(100))
    round_id = book.open(LEGACY)
    for name in names:
        book.submit(round_id, name)
    return round_id


def test_stake_on_round_needs_an_open_round(book: Stakes) -> None:
    book.grant("alice", nmr(10))
    with pytest.raises(NoRoundToStake):
        book.stake_on("oldtimer", nmr(5), "0.5")
    round_id = book.open(LEGACY)
    book.submit(round_id, "oldtimer")
    with transaction(book.sessions) as session:
        round_ = session.get_one(Round, round_id)
        book.clock.set(round_.close_time)
        RoundLifecycle(None, book.clock).close(session, round_)
    with pytest.raises(NoRoundToStake):
        book.stake_on("oldtimer", nmr(5), "0.5")
    assert book.balance(book.wallet("alice")) == nmr(10)


def test_stake_on_round_needs_a_valid_on_time_submission(book: Stakes) -> None:
    round_id = legacy_round(book)
    with pytest.raises(NoRoundToStake, match="no valid submission"):
        book.stake_on("oldtimer", nmr(5), "0.5")
    book.submit(round_id, "oldtimer", valid=False)
    with pytest.raises(NoRoundToStake, match="no valid submission"):
        book.stake_on("oldtimer", nmr(5), "0.5")
    assert book.at_risk(round_id) == {}
    assert book.balance(book.wallet("alice")) == nmr(100)


def test_stake_on_round_moves_the_difference_and_keeps_the_confidence(book: Stakes) -> None:
    round_id = legacy_round(book, "oldtimer")
    book.stake_on("oldtimer", nmr(10), "0.5")
    assert book.balance(book.wallet("alice")) == nmr(90)
    assert book.balance(book.stake("oldtimer")) == nmr(10)
    assert book.at_risk(round_id) == {"oldtimer": (nmr(10), Decimal("0.5"))}

    book.stake_on("oldtimer", nmr(4), "0.8")  # down by 6
    assert book.balance(book.wallet("alice")) == nmr(96)
    assert book.at_risk(round_id) == {"oldtimer": (nmr(4), Decimal("0.8"))}

    before = book.balance(book.wallet("alice"))
    book.stake_on("oldtimer", nmr(4), "0.3")  # the confidence alone
    assert book.balance(book.wallet("alice")) == before
    assert book.at_risk(round_id) == {"oldtimer": (nmr(4), Decimal("0.3"))}
    assert book.changes("oldtimer") == {
        (INCREASE, nmr(10), StakeChangeStatus.DONE),
        (DECREASE, nmr(6), StakeChangeStatus.DONE),
    }


def test_stake_on_round_beyond_the_wallet_is_refused(book: Stakes) -> None:
    round_id = legacy_round(book, "oldtimer")
    before = book.written()
    with pytest.raises(NotEnoughNmr):
        book.stake_on("oldtimer", nmr(100) + 1, "0.5")
    assert book.written() == before
    assert book.at_risk(round_id) == {}


@pytest.mark.parametrize("confidence", ["0", "-0.1", "1.0001", "2", "NaN", "Infinity"])
def test_stake_on_round_refuses_a_confidence_outside_zero_to_one(
    book: Stakes, confidence: str
) -> None:
    round_id = legacy_round(book, "oldtimer")
    with pytest.raises(InvalidStakeAmount):
        book.stake_on("oldtimer", nmr(5), confidence)
    assert book.at_risk(round_id) == {}


def test_stake_on_round_accepts_full_confidence(book: Stakes) -> None:
    round_id = legacy_round(book, "oldtimer")
    book.stake_on("oldtimer", nmr(5), "1")
    assert book.at_risk(round_id) == {"oldtimer": (nmr(5), Decimal(1))}


def test_stake_on_round_is_refused_under_the_classic_rules(book: Stakes) -> None:
    book.grant("alice", nmr(10))
    round_id = book.open(CLASSIC)
    book.submit(round_id, "steady")
    with pytest.raises(StakeError, match="stakes continuously"):
        book.stake_on("steady", nmr(5), "0.5")


def test_change_stake_under_the_2017_rules_changes_the_open_rounds_stake(book: Stakes) -> None:
    round_id = legacy_round(book, "oldtimer")
    book.change("oldtimer", INCREASE, nmr(5))
    assert book.at_risk(round_id) == {"oldtimer": (nmr(5), Decimal(1))}  # confidence 1 if none
    book.stake_on("oldtimer", nmr(5), "0.4")
    book.change("oldtimer", INCREASE, nmr(3))
    assert book.at_risk(round_id) == {"oldtimer": (nmr(8), Decimal("0.4"))}  # kept
    change = book.change("oldtimer", DECREASE, nmr(2))
    assert (change.status, change.due_round_id) == (StakeChangeStatus.DONE, None)
    assert book.at_risk(round_id) == {"oldtimer": (nmr(6), Decimal("0.4"))}
    assert book.balance(book.wallet("alice")) == nmr(94)
    assert book.balance(book.stake("oldtimer")) == nmr(6)
    with pytest.raises(NotEnoughNmr):
        book.change("oldtimer", DECREASE, nmr(6) + 1)
    assert book.at_risk(round_id) == {"oldtimer": (nmr(6), Decimal("0.4"))}


def test_change_stake_under_the_2017_rules_needs_an_open_round(book: Stakes) -> None:
    book.grant("alice", nmr(10))
    with pytest.raises(NoRoundToStake):
        book.change("oldtimer", INCREASE, nmr(5))
    assert book.balance(book.wallet("alice")) == nmr(10)


def test_2017_stakes_are_not_frozen_from_the_stake_balance(book: Stakes) -> None:
    """Under the 2017 rules the close keeps the stakes placed on the round."""
    round_id = legacy_round(book, "oldtimer", "rival")
    book.stake_on("oldtimer", nmr(7), "0.6")
    assert book.close(round_id) == 0
    assert book.at_risk(round_id) == {"oldtimer": (nmr(7), Decimal("0.6"))}


@pytest.mark.parametrize("confidence", ["0.00000000001", "0.12345678901"])
def test_stake_on_round_keeps_a_finer_confidence_exactly_or_refuses_it(
    book: Stakes, confidence: str
) -> None:
    """The column holds 10 decimals: a finer confidence must not be rounded (to 0, outside
    (0, 1], or to another bid) behind the participant's back."""
    round_id = legacy_round(book, "oldtimer")
    try:
        book.stake_on("oldtimer", nmr(5), confidence)
    except InvalidStakeAmount:
        assert book.at_risk(round_id) == {}
    else:
        assert book.at_risk(round_id) == {"oldtimer": (nmr(5), Decimal(confidence))}
