"""One whole round on a real node (anvil on loopback): the contracts deployed with web3,
stakes authorised and pulled into escrow, the close, the root, the claims."""

from __future__ import annotations

import os

from crowdquant.payouts.merkle import StakeClaim
from tests.ledger.evm.conftest import NMR, SUPPLY, Chain, model_key, reverts


def test_a_round_on_anvil_ends_with_every_balance_as_claimed(anvil_chain: Chain) -> None:
    chain = anvil_chain
    f = chain.tournament.functions
    assert chain.w3.eth.chain_id == 31337
    close = chain.open_round(1)
    alice_model, bob_model, carol_model = model_key(), model_key(), model_key()
    submission = os.urandom(32)
    chain.send(f.authorizeStake(1, alice_model, submission, 100 * NMR), chain.alice)
    chain.send(f.authorizeStake(1, bob_model, os.urandom(32), 40 * NMR), chain.bob)
    chain.send(f.pullStakes(1, [alice_model, bob_model]), chain.operator)
    chain.stake(1, carol_model, chain.carol, 20 * NMR)
    staked = chain.tournament.events.Staked().get_logs(from_block=0)
    assert [(e.args.model, e.args.amount) for e in staked] == [
        (alice_model, 100 * NMR),
        (bob_model, 40 * NMR),
        (carol_model, 20 * NMR),
    ]
    assert staked[0].args.submissionHash == submission
    assert chain.balance(chain.tournament.address) == chain.held() == 160 * NMR

    chain.travel_to(close)
    with reverts("round is closed"):
        chain.send(f.authorizeStake(1, model_key(), os.urandom(32), NMR), chain.alice)

    claims = [
        StakeClaim(1, alice_model, 100 * NMR, 5 * NMR, 0),
        StakeClaim(1, bob_model, 38 * NMR, 0, 2 * NMR),
        StakeClaim(1, carol_model, 0, 0, 20 * NMR),
    ]
    treasury = chain.balance(chain.operator)
    tree = chain.resolve(1, claims)
    assert chain.supply() == SUPPLY - 22 * NMR
    assert chain.balance(chain.operator) == treasury - 5 * NMR
    chain.send(f.claim(1, *chain.claim_args(tree, claims[0])), chain.alice)
    chain.send(f.claimMany(1, [chain.claim_args(tree, c) for c in claims[1:]]), chain.operator)
    with reverts("already claimed"):
        chain.send(f.claim(1, *chain.claim_args(tree, claims[0])), chain.alice)

    assert chain.balance(chain.alice) == 1_005 * NMR
    assert chain.balance(chain.bob) == 998 * NMR
    assert chain.balance(chain.carol) == 980 * NMR
    assert chain.balance(chain.tournament.address) == chain.held() == 0
    holders = [chain.operator, chain.alice, chain.bob, chain.carol, chain.tournament.address]
    assert sum(chain.balance(holder) for holder in holders) == chain.supply()
    paid = {
        e.args.model: e.args.stakeReturned + e.args.reward
        for e in chain.tournament.events.Claimed().get_logs(from_block=0)
    }
    assert paid == {alice_model: 105 * NMR, bob_model: 38 * NMR, carol_model: 0}
