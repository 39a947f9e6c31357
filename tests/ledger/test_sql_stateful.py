"""Random histories against the database backend (Hypothesis stateful), on both databases.

Deposits from the treasury, stakes, unstakes, releases, burns, rewards, USD prize pools,
retries of recorded events (same postings, and conflicting ones), minting attempts,
unbalanced postings and crashes (between two posts of one transaction, and inside a post
after its journal rows are written). A model of the balances predicts every refusal. After
every step: the hash chain verifies, the projection equals the journal and the model,
conservation holds (NMR outside genesis and the burn sink = genesis − burned; USD sums to
zero), no balance is negative, and the journal holds exactly the accepted transactions.
"""

from __future__ import annotations

import itertools
import uuid
from typing import ClassVar
from unittest import mock

import pytest
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
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.session import transaction
from crowdquant.ledger import (
    BURNED,
    GENESIS,
    OPERATOR_FUNDING,
    TREASURY,
    AccountId,
    IdempotencyConflict,
    InsufficientFunds,
    MintingRefused,
    Posting,
    Unbalanced,
    prize_pool,
    release,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, NMR_UNIT, Currency

from .conftest import TickingClock

PEOPLE = 3
NMR, USD = Currency.NMR, Currency.USD
people = st.integers(0, PEOPLE - 1)
AmountSpec = int | str
SHARES = st.sampled_from(["half", "tenth", "all", "all+1"])
"""A share of what the source holds (with a smallest unit too many): exact edges are hit."""
nmr_amounts = st.one_of(
    SHARES, st.integers(1, 1_000 * NMR_UNIT), st.integers(1, 2 * GENESIS_SUPPLY)
)
usd_amounts = st.one_of(SHARES, st.integers(1, 10_000_00))
Holding = tuple[AccountId, Currency]


class Crash(Exception):  # noqa: N818
    """An injected failure."""


def _reset(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        for table in ("ledger_postings", "ledger_transactions", "ledger_balances"):
            session.execute(text(f"DELETE FROM {table}"))


class LedgerMachine(RuleBasedStateMachine):
    sessions: ClassVar[sessionmaker[Session]]

    def __init__(self) -> None:
        super().__init__()
        _reset(self.sessions)
        self.ledger = SqlLedger(TickingClock())
        self.users = [uuid.uuid4() for _ in range(PEOPLE)]
        self.models = [uuid.uuid4() for _ in range(PEOPLE)]  # model i belongs to user i
        self.pool = prize_pool(uuid.uuid4())
        with transaction(self.sessions) as session:
            genesis = self.ledger.genesis(session)
        self.expected: dict[Holding, int] = {
            (GENESIS, NMR): -GENESIS_SUPPLY,
            (TREASURY, NMR): GENESIS_SUPPLY,
        }
        self.recorded: dict[str, tuple[Currency, tuple[Posting, ...]]] = {
            "genesis": (NMR, genesis.postings)
        }
        self.keys = itertools.count()

    # --- helpers -----------------------------------------------------------------------------

    def _held(self, account: AccountId, currency: Currency) -> int:
        return self.expected.get((account, currency), 0)

    def _amount(self, source: AccountId, currency: Currency, spec: AmountSpec) -> int:
        if isinstance(spec, int):
            return spec
        held = max(self._held(source, currency), 0)
        if spec == "all+1":
            return held + 1
        return max(1, {"half": held // 2, "tenth": held // 10, "all": held}[spec])

    def _accept(self, key: str, currency: Currency, postings: tuple[Posting, ...]) -> None:
        for posting in postings:
            holding = (posting.account, currency)
            self.expected[holding] = self.expected.get(holding, 0) + posting.amount
        self.recorded[key] = (currency, postings)

    def _move(
        self, source: AccountId, target: AccountId, currency: Currency, spec: AmountSpec
    ) -> None:
        amount = self._amount(source, currency, spec)
        short = not source.may_go_negative(currency) and self._held(source, currency) < amount
        key = f"event:{next(self.keys)}"
        try:
            with transaction(self.sessions) as session:
                recorded = self.ledger.post(
                    session, key, currency, transfer(source, target, amount)
                )
        except InsufficientFunds as refused:
            assert short, refused.message
            assert refused.account == str(source)
            return
        assert not short, f"{source} gave {amount} it did not have"
        assert recorded.event_key == key and recorded.amount(target) == amount
        self._accept(key, currency, recorded.postings)

    @initialize()
    def open_wallets_and_stakes(self) -> None:
        """Something in every wallet and stake to begin with, so that histories go deep."""
        for user, model in zip(self.users, self.models, strict=True):
            self._move(TREASURY, wallet(user), NMR, 1_000 * NMR_UNIT)
            self._move(wallet(user), stake(model), NMR, 500 * NMR_UNIT)

    # --- NMR ---------------------------------------------------------------------------------

    @rule(user=people, amount=nmr_amounts)
    def deposit(self, user: int, amount: AmountSpec) -> None:
        self._move(TREASURY, wallet(self.users[user]), NMR, amount)

    @rule(model=people, amount=nmr_amounts)
    def stake_more(self, model: int, amount: AmountSpec) -> None:
        self._move(wallet(self.users[model]), stake(self.models[model]), NMR, amount)

    @rule(model=people, amount=nmr_amounts)
    def unstake(self, model: int, amount: AmountSpec) -> None:
        self._move(stake(self.models[model]), release(self.models[model]), NMR, amount)

    @rule(model=people, amount=nmr_amounts)
    def settle_release(self, model: int, amount: AmountSpec) -> None:
        self._move(release(self.models[model]), wallet(self.users[model]), NMR, amount)

    @rule(model=people, amount=nmr_amounts, pending=st.booleans())
    def burn(self, model: int, amount: AmountSpec, pending: bool) -> None:
        source = release(self.models[model]) if pending else stake(self.models[model])
        self._move(source, BURNED, NMR, amount)

    @rule(model=people, amount=nmr_amounts)
    def reward(self, model: int, amount: AmountSpec) -> None:
        self._move(TREASURY, stake(self.models[model]), NMR, amount)

    # --- USD ---------------------------------------------------------------------------------

    @rule(amount=usd_amounts)
    def fund_prize_pool(self, amount: AmountSpec) -> None:
        self._move(OPERATOR_FUNDING, self.pool, USD, amount)

    @rule(user=people, amount=usd_amounts)
    def pay_prize(self, user: int, amount: AmountSpec) -> None:
        self._move(self.pool, wallet(self.users[user]), USD, amount)

    # --- retries, refusals and crashes -------------------------------------------------------

    @rule(data=st.data())
    def retry_a_recorded_event(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(self.recorded)))
        currency, postings = self.recorded[key]
        with transaction(self.sessions) as session:
            if key == "genesis":
                again = self.ledger.genesis(session)
            else:
                again = self.ledger.post(session, key, currency, tuple(reversed(postings)))
        assert (again.event_key, again.currency, again.postings) == (key, currency, postings)

    @precondition(lambda self: len(self.recorded) > 1)
    @rule(data=st.data())
    def retry_with_other_postings(self, data: st.DataObject) -> None:
        key = data.draw(st.sampled_from(sorted(set(self.recorded) - {"genesis"})))
        currency, postings = self.recorded[key]
        (source,) = (p for p in postings if p.amount < 0)
        (target,) = (p for p in postings if p.amount > 0)
        one_more = transfer(source.account, target.account, target.amount + 1)
        with pytest.raises(IdempotencyConflict), transaction(self.sessions) as session:
            self.ledger.post(session, key, currency, one_more)

    @rule(user=people)
    def mint_or_unburn(self, user: int) -> None:
        for source in (GENESIS, BURNED):
            with pytest.raises(MintingRefused), transaction(self.sessions) as session:
                self.ledger.post(
                    session,
                    f"mint:{next(self.keys)}",
                    NMR,
                    transfer(source, wallet(self.users[user]), 1),
                )

    @rule(user=people)
    def post_unbalanced(self, user: int) -> None:
        with pytest.raises(Unbalanced), transaction(self.sessions) as session:
            self.ledger.post(
                session, f"odd:{next(self.keys)}", NMR, [Posting(wallet(self.users[user]), 1)]
            )

    @precondition(lambda self: self._held(TREASURY, NMR) >= 1_000 * NMR_UNIT)
    @rule(user=people, amount=st.integers(1, 1_000 * NMR_UNIT), retry=st.booleans())
    def crash_between_two_posts(self, user: int, amount: int, retry: bool) -> None:
        """A deposit and a stake in one transaction, then a crash: neither stays; the same
        event keys can be posted again afterwards."""
        deposit_key, stake_key = f"event:{next(self.keys)}", f"event:{next(self.keys)}"
        source, target = wallet(self.users[user]), stake(self.models[user])
        with pytest.raises(Crash), transaction(self.sessions) as session:
            self.ledger.post(session, deposit_key, NMR, transfer(TREASURY, source, amount))
            self.ledger.post(session, stake_key, NMR, transfer(source, target, amount))
            raise Crash
        if retry:
            with transaction(self.sessions) as session:
                again = self.ledger.post(
                    session, deposit_key, NMR, transfer(TREASURY, source, amount)
                )
            self._accept(deposit_key, NMR, again.postings)

    @precondition(lambda self: self._held(TREASURY, NMR) >= 1_000 * NMR_UNIT)
    @rule(user=people, amount=st.integers(1, 1_000 * NMR_UNIT))
    def crash_inside_a_post(self, user: int, amount: int) -> None:
        """The journal rows are written, then the process dies before the balances are."""
        with (
            mock.patch.object(SqlLedger, "_write_balances", side_effect=Crash),
            pytest.raises(Crash),
            transaction(self.sessions) as session,
        ):
            self.ledger.post(
                session,
                f"event:{next(self.keys)}",
                NMR,
                transfer(TREASURY, wallet(self.users[user]), amount),
            )

    # --- after every step ----------------------------------------------------------------------

    @invariant()
    def the_books_are_sound_and_match_the_model(self) -> None:
        with transaction(self.sessions) as session:
            report = self.ledger.verify(session)
            projected = {
                (account, currency): balance
                for currency in Currency
                for account, balance in self.ledger.balances(session, currency).items()
            }
        assert report.sound, [str(p) for p in report.problems]  # chain, projection == journal
        assert report.transactions == len(self.recorded)  # nothing lost, nothing extra
        nonzero = {holding: amount for holding, amount in projected.items() if amount}
        assert nonzero == {holding: amount for holding, amount in self.expected.items() if amount}
        burned = projected.get((BURNED, NMR), 0)
        circulating = sum(
            amount
            for (account, currency), amount in projected.items()
            if currency is NMR and account not in (GENESIS, BURNED)
        )
        assert circulating == GENESIS_SUPPLY - burned == report.circulating
        assert sum(amount for (_, currency), amount in projected.items() if currency is USD) == 0
        assert all(
            amount >= 0
            for (account, currency), amount in projected.items()
            if not account.may_go_negative(currency)
        )


def test_random_histories_keep_every_invariant(sessions: sessionmaker[Session]) -> None:
    machine = type("Machine", (LedgerMachine,), {"sessions": sessions})
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=30,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
