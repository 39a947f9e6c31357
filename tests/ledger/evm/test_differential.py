"""The same random history on both backends: the database ledger (`SqlLedger`) and the
contracts on a real node (anvil), driven by the operator's moves (`TournamentChain`).

Grants from the treasury, rounds, stakes authorised and pulled into escrow at the close,
resolutions (stakes returned, rewards, burns), claims by a staker or in a batch by the
operator, retries of any earlier move, a pause, and crashes (the operator's process dies
after a broadcast, the books' transaction before its commit; both restart). Each side
decides on its own balances (which stakes it can pull, which rewards the treasury can pay).
After every step every invariant of A11 is checked on both, and every balance is the same:
each participant's wallet, each model's escrow, the treasury, the burned, the total supply.
"""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from eth_account import Account
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

from crowdquant import faults
from crowdquant.clock import SystemClock
from crowdquant.db.session import transaction
from crowdquant.faults import CRASH_AT
from crowdquant.ledger import (
    BURNED,
    GENESIS,
    TREASURY,
    AccountId,
    Posting,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.evm.deploy import deploy_contracts
from crowdquant.ledger.evm.sender import TransactionSender
from crowdquant.ledger.evm.tournament import TournamentChain, model_key
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import GENESIS_SUPPLY, Currency
from crowdquant.payouts.merkle import ClaimTree, StakeClaim, claim_tree
from tests.ledger.conftest import TickingClock
from tests.ledger.evm.conftest import NMR, SUPPLY, Chain, reverts

NMR_ = Currency.NMR
HOUR = 3_600
PEOPLE = 3


class KilledError(Exception):
    """The process dies here."""


@dataclass
class Staked:
    """One model's stake in one round."""

    model: uuid.UUID
    person: int
    amount: int
    score: int = 0
    """-1 (a loss: a burn), 0 or 1 (a gain: a reward), set at resolution."""


@dataclass
class RoundState:
    round_id: int
    close: int
    resolve: int
    authorised: list[Staked] = field(default_factory=list)
    staked: dict[uuid.UUID, Staked] = field(default_factory=dict)
    closed: bool = False
    tree: ClaimTree | None = None
    claimed: set[uuid.UUID] = field(default_factory=set)

    def claim_of(self, model: uuid.UUID) -> StakeClaim:
        assert self.tree is not None
        [found] = [c for c in self.tree.claims if c.model == model_key(model)]
        return found

    def unpaid(self) -> list[uuid.UUID]:
        if self.tree is None:
            return []
        return [m for m in self.staked if m not in self.claimed and self.claim_of(m).paid > 0]


def _reset(sessions: sessionmaker[Session]) -> None:
    with transaction(sessions) as session:
        for table in (
            "ledger_postings",
            "ledger_transactions",
            "ledger_balances",
            "evm_transactions",
        ):
            session.execute(text(f"DELETE FROM {table}"))


@pytest.fixture
def deployed(anvil_chain: Chain) -> tuple[Chain, Any, Any]:
    """Fresh contracts whose whole supply the operator's key holds as the treasury, and
    three participants who allow the tournament their tokens."""
    chain, key = anvil_chain, Account.create()
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": chain.owner, "to": key.address, "value": NMR})
    )
    deployment = deploy_contracts(
        chain.w3, deployer=chain.owner, treasury=key.address, operator=key.address
    )
    for person in (chain.alice, chain.bob, chain.carol):
        chain.send(
            deployment.token.functions.approve(deployment.tournament.address, 2**256 - 1), person
        )
    return chain, key, deployment


def test_random_histories_agree_on_both_backends_and_keep_every_invariant(
    deployed: tuple[Chain, Any, Any],
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, key, deployment = deployed
    w3, token, tournament = chain.w3, deployment.token, deployment.tournament
    t, f = token.functions, tournament.functions
    addresses = [chain.alice, chain.bob, chain.carol]
    holders = [key.address, *addresses, tournament.address]

    def die() -> None:
        raise KilledError

    monkeypatch.setattr(faults, "die", die)

    def read(*calls: Any) -> list[Any]:
        """What each contract call returns, asked of the node in one batch."""
        with w3.batch_requests() as batch:
            for call in calls:
                batch.add(call)
            return list(batch.execute())

    def rpc(method: str, *params: Any) -> Any:
        return w3.provider.make_request(method, list(params))["result"]  # type: ignore[arg-type]

    class Histories(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = rpc("evm_snapshot")
            _reset(sessions)
            self.clock = TickingClock()
            self.restart()
            with transaction(sessions) as session:
                self.books.genesis(session)
            self.people = [uuid.uuid4() for _ in range(PEOPLE)]
            self.rounds: list[RoundState] = []
            self.keys = itertools.count()
            self.moves: list[Callable[[], None]] = []
            self.retried = False
            self.supply = SUPPLY

        def teardown(self) -> None:
            rpc("evm_revert", self.snapshot)

        def restart(self) -> None:
            """A new process: a new sender over the same database and node, new books."""
            sender = TransactionSender(w3, key, sessions, SystemClock(), poll_seconds=0.005)
            self.operator = TournamentChain(sender, deployment)
            self.books = SqlLedger(self.clock)

        # -- one move on both backends ---------------------------------------------------------

        def both(
            self,
            on_chain: Callable[[TournamentChain], object],
            on_books: Callable[[Session], object],
            *,
            crash: bool,
        ) -> None:
            """`on_chain`, then `on_books` in one transaction. A crash kills the operator
            after its broadcast (when it sends anything) and rolls the books back; the
            restarted process does the move again. Recorded for retries."""
            if crash:
                monkeypatch.setenv(CRASH_AT, "chain:after-broadcast")
                with contextlib.suppress(KilledError):
                    on_chain(self.operator)
                monkeypatch.delenv(CRASH_AT)
                with contextlib.suppress(KilledError), transaction(sessions) as session:
                    on_books(session)
                    raise KilledError
                self.restart()

            def move() -> None:
                on_chain(self.operator)
                with transaction(sessions) as session:
                    on_books(session)

            move()
            self.moves.append(move)
            self.retried = False
            with reverts("amount is held for stakers"):  # the owner cannot take escrow
                f.recover(chain.owner, 1).call({"from": chain.owner})

        def post(self, key: str, postings: list[Posting]) -> Callable[[Session], object]:
            """Record `postings` under `key` (nothing, when nothing moves)."""

            def on_books(session: Session) -> None:
                if postings:
                    self.books.post(session, key, NMR_, postings)

            return on_books

        def held(self, account: AccountId) -> int:
            with sessions() as session:
                return self.books.balance(session, account, NMR_)

        def _open(self) -> list[RoundState]:
            return [r for r in self.rounds if not r.closed]

        def travel_to(self, timestamp: int) -> None:
            """Let time pass; a round whose close passes unclosed stakes nothing."""
            if chain.now() < timestamp:
                chain.travel_to(timestamp)
            for r in self._open():
                if chain.now() + 1 >= r.close:
                    r.closed = True

        # -- the rules -------------------------------------------------------------------------

        @initialize(
            data=st.data(),
            wholes=st.lists(st.integers(1, 60), min_size=PEOPLE, max_size=PEOPLE),
        )
        def start(self, data: st.DataObject, wholes: list[int]) -> None:
            """Everyone holds something, a round is open and everyone asks to stake in it."""
            for person, whole in enumerate(wholes):
                self.grant(person, whole, crash=False)
            self.open_round(1, crash=False)
            for person in range(PEOPLE):
                self.authorise_stake(data, person, data.draw(st.integers(1, 40)))

        @rule(person=st.integers(0, PEOPLE - 1), whole=st.integers(1, 60), crash=st.booleans())
        def grant(self, person: int, whole: int, crash: bool) -> None:
            amount, n = whole * NMR, next(self.keys)
            self.both(
                lambda op: op.sender.send_call(f"grant:{n}", t.transfer(addresses[person], amount)),
                self.post(f"grant:{n}", [*transfer(TREASURY, wallet(self.people[person]), amount)]),
                crash=crash,
            )

        @precondition(lambda self: len(self._open()) < 2)
        @rule(gap=st.integers(1, 3), crash=st.booleans())
        def open_round(self, gap: int, crash: bool) -> None:
            last = f.lastRoundId().call()
            close = chain.now() + 10 * HOUR
            state = RoundState(last + gap, close, close + HOUR)
            # only the operator creates rounds, ids only increase, resolution after close
            with reverts("caller is not the operator"):
                f.createRound(state.round_id, close, close + HOUR).call({"from": chain.alice})
            if last:
                with reverts("round ids must increase"):
                    f.createRound(last, close, close + HOUR).call({"from": key.address})
            with reverts("resolution before close"):
                f.createRound(state.round_id, close, close - 1).call({"from": key.address})
            self.both(
                lambda op: op.create_round(state.round_id, state.close, state.resolve),
                lambda session: None,
                crash=crash,
            )
            self.rounds.append(state)
            self.pause()

        @precondition(lambda self: self._open())
        @rule(data=st.data(), person=st.integers(0, PEOPLE - 1), whole=st.integers(1, 40))
        def authorise_stake(self, data: st.DataObject, person: int, whole: int) -> None:
            target = data.draw(st.sampled_from(self._open()))
            staked = Staked(uuid.uuid4(), person, whole * NMR)
            call = f.authorizeStake(
                target.round_id, model_key(staked.model), b"\x01" * 32, staked.amount
            )
            chain.send(call, addresses[person])
            target.authorised.append(staked)

        @precondition(lambda self: any(r.authorised for r in self._open()))
        @rule(data=st.data(), crash=st.booleans())
        def close(self, data: st.DataObject, crash: bool) -> None:
            """Pull every authorised stake its staker can pay for into escrow (each backend
            deciding on its own balances), then let the close time pass."""
            target = data.draw(st.sampled_from([r for r in self._open() if r.authorised]))
            models = [model_key(s.model) for s in target.authorised]
            spendable = {p: self.held(wallet(self.people[p])) for p in range(PEOPLE)}
            fundable = []
            for s in target.authorised:
                if s.amount <= spendable[s.person]:
                    spendable[s.person] -= s.amount
                    fundable.append(s)
            pulled: list[bytes] = []  # once the first pull is done, a retry pulls those again

            def on_books(session: Session) -> None:
                for s in fundable:
                    self.books.post(
                        session,
                        f"stake:{target.round_id}:{s.model}",
                        NMR_,
                        transfer(wallet(self.people[s.person]), stake(s.model), s.amount),
                    )

            self.both(
                lambda op: op.pull_stakes(target.round_id, pulled or models), on_books, crash=crash
            )
            for s in target.authorised:
                if f.stakes(target.round_id, model_key(s.model)).call()[3]:
                    target.staked[s.model] = s
                    pulled.append(model_key(s.model))
            self.travel_to(target.close)
            target.closed = True
            # no stake moves in or out after the close, and the owner cannot take escrow
            with reverts("round is closed"):
                f.authorizeStake(target.round_id, b"\x02" * 32, b"\x01" * 32, NMR).call(
                    {"from": chain.alice}
                )
            with reverts("round is closed"):
                f.pullStakes(target.round_id, models[:1]).call({"from": key.address})

        @precondition(
            lambda self: any(r.closed and r.tree is None and r.staked for r in self.rounds)
        )
        @rule(data=st.data(), crash=st.booleans())
        def resolve(self, data: st.DataObject, crash: bool) -> None:
            target = data.draw(
                st.sampled_from(
                    [r for r in self.rounds if r.closed and r.tree is None and r.staked]
                )
            )
            claims, postings = [], []
            for s in target.staked.values():
                s.score = data.draw(st.sampled_from([-1, 0, 1]))
                share = data.draw(st.integers(1, 100))
                burn = s.amount * share // 100 if s.score < 0 else 0
                reward = s.amount * share // 400 if s.score > 0 else 0
                claims.append(
                    StakeClaim(target.round_id, model_key(s.model), s.amount - burn, reward, burn)
                )
                postings += [*transfer(stake(s.model), BURNED, burn)] if burn else []
                postings += [*transfer(TREASURY, stake(s.model), reward)] if reward else []
            tree = claim_tree(claims)
            # burn only on a loss, reward only on a gain, never more burned than staked
            for claim in tree.claims:
                [s] = [s for s in target.staked.values() if model_key(s.model) == claim.model]
                assert (claim.burn > 0) <= (s.score < 0) and (claim.reward > 0) <= (s.score > 0)
                assert claim.burn <= s.amount
            # the treasury can pay the rewards, on both backends
            assert tree.total_reward <= self.held(TREASURY) == t.balanceOf(key.address).call()
            self.travel_to(target.resolve)
            with reverts("caller is not the operator"):
                f.resolveRound(target.round_id, tree.root, 0, 0).call({"from": chain.alice})
            self.both(
                lambda op: op.resolve_round(tree),
                self.post(f"resolve:{target.round_id}", postings),
                crash=crash,
            )
            target.tree = tree
            self.supply -= tree.total_burn
            with reverts("round already resolved"):  # resolving twice is refused on chain
                f.resolveRound(target.round_id, tree.root, 0, 0).call({"from": key.address})

        @precondition(lambda self: any(r.unpaid() for r in self.rounds))
        @rule(data=st.data(), by_operator=st.booleans(), crash=st.booleans())
        def claim(self, data: st.DataObject, by_operator: bool, crash: bool) -> None:
            target = data.draw(st.sampled_from([r for r in self.rounds if r.unpaid()]))
            tree = target.tree
            assert tree is not None
            models = target.unpaid()
            if not by_operator:  # a staker claims one of their own
                models = [data.draw(st.sampled_from(models))]

            def on_chain(op: TournamentChain) -> None:
                if by_operator:
                    op.pay_claims(tree)
                    return
                c, staker = target.claim_of(models[0]), addresses[target.staked[models[0]].person]
                if not f.stakes(target.round_id, c.model).call()[4]:
                    proof = list(tree.proof(c.model))
                    args = (c.model, c.stake_returned, c.reward, c.burn, proof)
                    chain.send(f.claim(target.round_id, *args), staker)

            def on_books(session: Session) -> None:
                for m in models:
                    s = target.staked[m]
                    self.books.post(
                        session,
                        f"claim:{target.round_id}:{m}",
                        NMR_,
                        transfer(stake(m), wallet(self.people[s.person]), target.claim_of(m).paid),
                    )

            self.both(on_chain, on_books, crash=crash)
            target.claimed.update(models)
            c = target.claim_of(models[0])
            with reverts("already claimed"):  # a claim pays once
                f.claim(
                    target.round_id,
                    c.model,
                    c.stake_returned,
                    c.reward,
                    c.burn,
                    list(tree.proof(c.model)),
                ).call({"from": key.address})

        def pause(self) -> None:
            """Paused, no round opens and nothing stakes, resolves or claims; only the owner
            unpauses."""
            chain.send(f.pause(), chain.owner)
            operator = {"from": key.address}
            with reverts("paused"):
                f.createRound(10**6, chain.now() + HOUR, chain.now() + HOUR).call(operator)
            with reverts("paused"):
                f.resolveRound(1, b"\x01" * 32, 0, 0).call(operator)
            with reverts("paused"):
                f.claim(1, b"\x01" * 32, 0, 0, 0, []).call(operator)
            for r in self._open():
                with reverts("paused"):
                    f.authorizeStake(r.round_id, b"\x03" * 32, b"\x01" * 32, NMR).call(
                        {"from": chain.alice}
                    )
            with reverts("caller is not the owner"):
                f.unpause().call({"from": key.address})
            chain.send(f.unpause(), chain.owner)

        @precondition(lambda self: self.moves and not self.retried)
        @rule(data=st.data())
        def retry(self, data: st.DataObject) -> None:
            """Any earlier move again, after a restart: nothing changes on either side."""
            self.retried = True
            before = self.state()
            self.restart()
            data.draw(st.sampled_from(self.moves))()
            assert self.state() == before

        # -- after every step --------------------------------------------------------------------

        def state(self) -> tuple[Any, ...]:
            with transaction(sessions) as session:
                report = self.books.verify(session)
                books = self.books.balances(session, NMR_)
            chain_balances = read(*(t.balanceOf(h) for h in holders))
            return report.head_hash, report.transactions, books, chain_balances

        @invariant()
        def both_backends_agree_and_keep_every_invariant(self) -> None:
            with transaction(sessions) as session:
                report = self.books.verify(session)
                books = self.books.balances(session, NMR_)
            # the books: every transaction balanced, the hash chain and the balances
            # replayed from the journal hold, conservation, nothing negative, nothing minted
            assert report.sound, [str(p) for p in report.problems]
            assert report.minted == GENESIS_SUPPLY
            assert all(v >= 0 for account, v in books.items() if account != GENESIS)
            burned = books.get(BURNED, 0)
            assert report.circulating == GENESIS_SUPPLY - burned

            # the chain, read in one batch
            models = [(r, x) for r in self.rounds for x in r.authorised]
            supply, owed, *rest = read(
                t.totalSupply(),
                f.totalHeld(),
                *(t.balanceOf(h) for h in holders),
                *(f.stakes(r.round_id, model_key(x.model)) for r, x in models),
                *(f.rounds(r.round_id) for r in self.rounds),
            )
            held = dict(zip(holders, rest[: len(holders)], strict=True))
            stakes = rest[len(holders) : len(holders) + len(models)]
            rounds = rest[len(holders) + len(models) :]
            # the holders hold the supply, which only the burns lowered; the escrow is
            # exactly what is owed to stakers
            assert sum(held.values()) == supply == SUPPLY - burned == self.supply <= SUPPLY
            assert held[tournament.address] == owed

            # parity, every balance: wallets, each model's escrow, the treasury, the burned
            assert books.get(TREASURY, 0) == held[key.address]
            for person, address in zip(self.people, addresses, strict=True):
                assert books.get(wallet(person), 0) == held[address]
            escrow = 0
            for (r, x), (_, _, amount, locked, claimed) in zip(models, stakes, strict=True):
                if not locked or claimed:
                    on_chain = 0
                elif r.tree is None:
                    on_chain = amount
                else:
                    on_chain = r.claim_of(x.model).paid
                assert books.get(stake(x.model), 0) == on_chain, (r.round_id, x)
                escrow += on_chain
            assert escrow == owed
            # resolution never comes before the close
            assert all(close <= resolve for close, resolve, *_ in rounds)

    run_state_machine_as_test(
        Histories,
        settings=settings(
            max_examples=4,
            stateful_step_count=16,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
