"""Random sequences of rounds, stakes, closes, resolutions, claims and attacks on a real node
(anvil), against a model of what each holder should hold; after every step, the invariants
of the token and the escrow hold (conservation, a supply that only falls by the burns, the
escrow equal to what the tournament owes, every balance as the model says)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

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

from crowdquant.payouts.merkle import ClaimTree, StakeClaim
from tests.ledger.evm.conftest import NMR, SUPPLY, Chain, reverts

DAY = 86_400


@dataclass
class OpenRound:
    round_id: int
    close: int
    resolve: int
    stakes: dict[bytes, tuple[str, int]] = field(default_factory=dict)
    tree: ClaimTree | None = None
    unpaid: set[bytes] = field(default_factory=set)


def test_random_histories_keep_the_token_and_the_escrow_sound(anvil_chain: Chain) -> None:
    chain = anvil_chain
    f = chain.tournament.functions
    stakers = [chain.alice, chain.bob, chain.carol]
    holders = [chain.owner, chain.operator, *stakers, chain.tournament.address]

    class Histories(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.snapshot = chain.w3.provider.make_request("evm_snapshot", [])["result"]  # type: ignore[arg-type]
            self.expected = {holder: chain.balance(holder) for holder in holders}
            self.supply = chain.supply()
            self.rounds: list[OpenRound] = []

        def teardown(self) -> None:
            chain.w3.provider.make_request("evm_revert", [self.snapshot])  # type: ignore[arg-type]

        def _open(self) -> list[OpenRound]:
            return [r for r in self.rounds if r.tree is None and chain.now() + 1 < r.close]

        @initialize()
        def first_round(self) -> None:
            self.open_round()

        @precondition(lambda self: len(self._open()) < 2)
        @rule()
        def open_round(self) -> None:
            round_id = f.lastRoundId().call() + 1
            close = chain.open_round(round_id, close_in=DAY, resolve_in=DAY)
            self.rounds.append(OpenRound(round_id, close, close + DAY))

        @precondition(lambda self: self._open())
        @rule(data=st.data(), staker=st.sampled_from([0, 1, 2]), whole=st.integers(1, 50))
        def stake(self, data: st.DataObject, staker: int, whole: int) -> None:
            target = data.draw(st.sampled_from(self._open()))
            address, model = stakers[staker], os.urandom(32)
            if self.expected[address] < whole * NMR:
                return
            chain.stake(target.round_id, model, address, whole * NMR)
            target.stakes[model] = (address, whole * NMR)
            self.expected[address] -= whole * NMR
            self.expected[chain.tournament.address] += whole * NMR
            with reverts("amount is held for stakers"):  # the owner cannot take escrow
                chain.send(f.recover(chain.owner, 1), chain.owner)

        @precondition(lambda self: any(r.tree is None and r.stakes for r in self.rounds))
        @rule(data=st.data())
        def resolve(self, data: st.DataObject) -> None:
            target = data.draw(
                st.sampled_from([r for r in self.rounds if r.tree is None and r.stakes])
            )
            claims = []
            for model, (_, amount) in target.stakes.items():
                burn = data.draw(st.integers(0, amount))
                reward = 0 if burn else data.draw(st.integers(0, amount // 10))
                claims.append(StakeClaim(target.round_id, model, amount - burn, reward, burn))
            target.tree = chain.resolve(target.round_id, claims)  # travels past resolution
            burn, reward = target.tree.total_burn, target.tree.total_reward
            self.supply -= burn
            self.expected[chain.operator] -= reward
            self.expected[chain.tournament.address] += reward - burn
            target.unpaid = set(target.stakes)

        @precondition(lambda self: any(r.unpaid for r in self.rounds))
        @rule(data=st.data())
        def claim(self, data: st.DataObject) -> None:
            target = data.draw(st.sampled_from([r for r in self.rounds if r.unpaid]))
            model = data.draw(st.sampled_from(sorted(target.unpaid)))
            assert target.tree is not None
            [found] = [c for c in target.tree.claims if c.model == model]
            staker = target.stakes[model][0]
            chain.send(f.claim(target.round_id, *chain.claim_args(target.tree, found)), staker)
            target.unpaid.discard(model)
            self.expected[staker] += found.paid
            self.expected[chain.tournament.address] -= found.paid
            with reverts("already claimed"):  # a second claim pays nothing
                chain.send(f.claim(target.round_id, *chain.claim_args(target.tree, found)), staker)

        @invariant()
        def balances_supply_and_escrow_add_up(self) -> None:
            assert chain.supply() == self.supply <= SUPPLY
            actual = {holder: chain.balance(holder) for holder in holders}
            assert actual == self.expected
            assert sum(actual.values()) == self.supply
            assert f.totalHeld().call() == actual[chain.tournament.address]

    run_state_machine_as_test(
        Histories,
        settings=settings(
            max_examples=6,
            stateful_step_count=15,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        ),
    )
