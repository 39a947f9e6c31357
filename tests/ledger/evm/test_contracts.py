"""The token and the tournament contract on an in-process EVM: a whole round, and the
attacks each check is there for."""

from __future__ import annotations

import os

import pytest

from crowdquant.ledger.evm.artifacts import load_artifact
from crowdquant.ledger.evm.authorization import StakeAuthorization
from crowdquant.payouts.merkle import StakeClaim, claim_leaf, claim_tree
from tests.ledger.evm.conftest import DAY, NMR, SUPPLY, Chain, model_key, reverts

ROUND = 1001


def test_the_whole_supply_is_minted_once_to_the_treasury(chain: Chain) -> None:
    assert chain.supply() == SUPPLY
    assert chain.balance(chain.operator) == SUPPLY - 3_000 * NMR
    functions = {item["name"] for item in load_artifact("Token").abi if item["type"] == "function"}
    assert not {name for name in functions if "mint" in name.lower()}


def test_burns_lower_the_supply_and_never_exceed_a_balance(chain: Chain) -> None:
    chain.send(chain.token.functions.burn(5 * NMR), chain.alice)
    assert chain.supply() == SUPPLY - 5 * NMR
    assert chain.balance(chain.alice) == 995 * NMR
    with reverts("balance too low"):
        chain.send(chain.token.functions.burn(996 * NMR), chain.alice)
    chain.send(chain.token.functions.approve(chain.bob, 2 * NMR), chain.alice)
    with reverts("allowance too low"):
        chain.send(chain.token.functions.burnFrom(chain.alice, 3 * NMR), chain.bob)
    chain.send(chain.token.functions.burnFrom(chain.alice, 2 * NMR), chain.bob)
    assert chain.supply() == SUPPLY - 7 * NMR


def test_a_round_locks_stakes_then_pays_each_claim_once(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    winner, loser, partial = model_key(), model_key(), model_key()
    chain.stake(ROUND, winner, chain.alice, 100 * NMR)
    chain.stake(ROUND, loser, chain.bob, 50 * NMR)
    # carol authorises and the operator pulls her stake in a batch
    chain.send(f.authorizeStake(ROUND, partial, os.urandom(32), 10 * NMR), chain.carol)
    chain.send(f.pullStakes(ROUND, [partial]), chain.operator)
    assert chain.balance(chain.tournament.address) == chain.held() == 160 * NMR
    assert f.rounds(ROUND).call()[2] == 160 * NMR

    claims = [
        StakeClaim(ROUND, winner, 100 * NMR, 7 * NMR, 0),
        StakeClaim(ROUND, loser, 45 * NMR, 0, 5 * NMR),
        StakeClaim(ROUND, partial, 9 * NMR, 0, 1 * NMR),
    ]
    treasury_before = chain.balance(chain.operator)
    tree = chain.resolve(ROUND, claims)
    assert chain.supply() == SUPPLY - 6 * NMR
    assert chain.balance(chain.operator) == treasury_before - 7 * NMR
    assert chain.held() == chain.balance(chain.tournament.address) == 161 * NMR

    chain.send(f.claim(ROUND, *chain.claim_args(tree, claims[0])), chain.alice)
    batch = [chain.claim_args(tree, claim) for claim in claims[1:]]
    chain.send(f.claimMany(ROUND, batch), chain.operator)
    assert chain.balance(chain.alice) == 1_007 * NMR
    assert chain.balance(chain.bob) == 995 * NMR
    assert chain.balance(chain.carol) == 999 * NMR
    assert chain.held() == chain.balance(chain.tournament.address) == 0
    state = f.rounds(ROUND).call()
    assert (state[3], state[4], state[7], state[8]) == (tree.root, True, 0, 0)

    with reverts("already claimed"):
        chain.send(f.claim(ROUND, *chain.claim_args(tree, claims[0])), chain.alice)
    with reverts("already claimed"):
        chain.send(f.claimMany(ROUND, batch), chain.operator)
    assert chain.balance(chain.alice) == 1_007 * NMR


def test_the_python_leaf_is_the_contracts_leaf(chain: Chain) -> None:
    claim = StakeClaim(7, model_key(), 3 * NMR + 1, 2**200, 12345)
    leaf = chain.tournament.functions.leafOf(
        claim.round_id, claim.model, claim.stake_returned, claim.reward, claim.burn
    ).call()
    assert leaf == claim_leaf(claim)


def test_many_claims_in_one_batch_each_proved(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    models = [model_key() for _ in range(5)]
    for index, model in enumerate(models):
        chain.send(f.authorizeStake(ROUND, model, os.urandom(32), (index + 1) * NMR), chain.alice)
    chain.send(f.pullStakes(ROUND, models), chain.operator)
    claims = [StakeClaim(ROUND, m, (i + 1) * NMR, i, 0) for i, m in enumerate(models)]
    tree = chain.resolve(ROUND, claims)
    before = chain.balance(chain.alice)
    chain.send(f.claimMany(ROUND, [chain.claim_args(tree, c) for c in claims]), chain.alice)
    assert chain.balance(chain.alice) == before + 15 * NMR + 10
    assert chain.held() == 0


def test_stakes_after_the_close_are_refused(chain: Chain) -> None:
    f = chain.tournament.functions
    close = chain.open_round(ROUND)
    authorised = model_key()
    chain.send(f.authorizeStake(ROUND, authorised, os.urandom(32), NMR), chain.alice)
    chain.travel_to(close)
    with reverts("round is closed"):
        chain.send(f.authorizeStake(ROUND, model_key(), os.urandom(32), NMR), chain.bob)
    with reverts("round is closed"):
        chain.send(f.pullStake(ROUND, authorised), chain.alice)
    with reverts("round is closed"):
        chain.send(f.pullStakes(ROUND, [authorised]), chain.operator)
    assert chain.held() == 0
    assert chain.balance(chain.alice) == 1_000 * NMR


def test_a_stake_is_tied_to_its_staker(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    model = model_key()
    chain.stake(ROUND, model, chain.alice, NMR)
    with reverts("stake already locked"):
        chain.send(f.authorizeStake(ROUND, model, os.urandom(32), 9 * NMR), chain.alice)
    other = model_key()
    chain.send(f.authorizeStake(ROUND, other, os.urandom(32), NMR), chain.alice)
    with reverts("model staked by another"):
        chain.send(f.authorizeStake(ROUND, other, os.urandom(32), NMR), chain.bob)
    with reverts("caller may not pull"):
        chain.send(f.pullStake(ROUND, other), chain.bob)
    with reverts("stake is zero"):
        chain.send(f.authorizeStake(ROUND, model_key(), os.urandom(32), 0), chain.bob)


def test_claims_wait_for_the_root_and_the_root_for_the_resolution_time(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    model = model_key()
    chain.stake(ROUND, model, chain.alice, 10 * NMR)
    claim = StakeClaim(ROUND, model, 10 * NMR, NMR, 0)
    tree = claim_tree([claim])
    with reverts("round not resolved"):
        chain.send(f.claim(ROUND, *chain.claim_args(tree, claim)), chain.alice)
    with reverts("round cannot resolve yet"):
        chain.send(f.resolveRound(ROUND, tree.root, 0, NMR), chain.operator)
    with reverts("caller is not the operator"):
        chain.send(f.resolveRound(ROUND, tree.root, 0, NMR), chain.alice)
    chain.resolve(ROUND, [claim])
    with reverts("round already resolved"):
        chain.send(f.resolveRound(ROUND, tree.root, 0, NMR), chain.operator)
    chain.send(f.claim(ROUND, *chain.claim_args(tree, claim)), chain.alice)
    assert chain.balance(chain.alice) == 1_001 * NMR


def test_a_wrong_proof_or_a_claim_that_is_not_the_stake_pays_nothing(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    alice_model, bob_model = model_key(), model_key()
    chain.stake(ROUND, alice_model, chain.alice, 10 * NMR)
    chain.stake(ROUND, bob_model, chain.bob, 10 * NMR)
    alice_claim = StakeClaim(ROUND, alice_model, 10 * NMR, NMR, 0)
    bob_claim = StakeClaim(ROUND, bob_model, 8 * NMR, 0, 2 * NMR)
    tree = chain.resolve(ROUND, [alice_claim, bob_claim])
    proof = list(tree.proof(alice_model))
    with reverts("invalid proof"):  # a bigger reward than the root holds
        chain.send(f.claim(ROUND, alice_model, 10 * NMR, 5 * NMR, 0, proof), chain.alice)
    with reverts("invalid proof"):  # another model's proof
        chain.send(
            f.claim(ROUND, alice_model, 10 * NMR, NMR, 0, list(tree.proof(bob_model))),
            chain.alice,
        )
    with reverts("invalid proof"):  # no proof at all
        chain.send(f.claim(ROUND, alice_model, 10 * NMR, NMR, 0, []), chain.alice)
    with reverts("claim does not match the stake"):  # skipping the burn
        chain.send(f.claim(ROUND, bob_model, 8 * NMR, 0, 0, proof), chain.bob)
    with reverts("caller may not claim"):
        chain.send(f.claim(ROUND, *chain.claim_args(tree, alice_claim)), chain.bob)
    assert chain.balance(chain.alice) == chain.balance(chain.bob) == 990 * NMR
    assert chain.held() == 19 * NMR


def test_the_owner_cannot_take_escrowed_stakes(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    chain.stake(ROUND, model_key(), chain.alice, 10 * NMR)
    with reverts("amount is held for stakers"):
        chain.send(f.recover(chain.owner, 1), chain.owner)
    # tokens sent here by mistake are the only ones the owner can move
    chain.send(chain.token.functions.transfer(chain.tournament.address, 3 * NMR), chain.bob)
    with reverts("amount is held for stakers"):
        chain.send(f.recover(chain.owner, 3 * NMR + 1), chain.owner)
    with reverts("caller is not the owner"):
        chain.send(f.recover(chain.bob, 3 * NMR), chain.operator)
    chain.send(f.recover(chain.bob, 3 * NMR), chain.owner)
    assert chain.balance(chain.tournament.address) == chain.held() == 10 * NMR
    with reverts("caller is not the operator"):
        chain.send(f.resolveRound(ROUND, os.urandom(32), 10 * NMR, 0), chain.owner)


def test_a_burn_beyond_the_stakes_is_refused(chain: Chain) -> None:
    chain.open_round(ROUND)
    model = model_key()
    chain.stake(ROUND, model, chain.alice, 10 * NMR)
    chain.travel_to(chain.tournament.functions.rounds(ROUND).call()[1])
    with reverts("burn exceeds the stakes"):
        chain.send(
            chain.tournament.functions.resolveRound(ROUND, os.urandom(32), 10 * NMR + 1, 0),
            chain.operator,
        )


def test_pause_stops_stakes_resolutions_and_claims_until_the_owner_unpauses(
    chain: Chain,
) -> None:
    f = chain.tournament.functions
    close = chain.open_round(ROUND)
    model = model_key()
    chain.stake(ROUND, model, chain.alice, 10 * NMR)
    chain.send(f.pause(), chain.operator)
    with reverts("paused"):
        chain.send(f.authorizeStake(ROUND, model_key(), os.urandom(32), NMR), chain.bob)
    with reverts("paused"):
        chain.send(f.createRound(ROUND + 1, close, close), chain.operator)
    with reverts("caller is not the owner"):
        chain.send(f.unpause(), chain.operator)
    with reverts("caller may not pause"):
        chain.send(f.pause(), chain.alice)
    claim = StakeClaim(ROUND, model, 10 * NMR, 0, 0)
    tree = claim_tree([claim])
    chain.travel_to(f.rounds(ROUND).call()[1])
    with reverts("paused"):
        chain.send(f.resolveRound(ROUND, tree.root, 0, 0), chain.operator)
    chain.send(f.unpause(), chain.owner)
    chain.resolve(ROUND, [claim])
    chain.send(f.pause(), chain.owner)
    with reverts("paused"):
        chain.send(f.claim(ROUND, *chain.claim_args(tree, claim)), chain.alice)


def test_ownership_moves_in_two_steps(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.send(f.transferOwnership(chain.carol), chain.owner)
    assert f.owner().call() == chain.owner
    with reverts("caller is not the pending owner"):
        chain.send(f.acceptOwnership(), chain.bob)
    chain.send(f.acceptOwnership(), chain.carol)
    assert (f.owner().call(), f.pendingOwner().call()) == (chain.carol, "0x" + "0" * 40)
    with reverts("caller is not the owner"):
        chain.send(f.setOperator(chain.owner), chain.owner)
    chain.send(f.setOperator(chain.bob), chain.carol)
    assert f.operator().call() == chain.bob


def test_round_ids_increase_and_only_the_operator_creates_rounds(chain: Chain) -> None:
    f = chain.tournament.functions
    close = chain.open_round(ROUND)
    with reverts("round ids must increase"):
        chain.send(f.createRound(ROUND, close, close + DAY), chain.operator)
    with reverts("caller is not the operator"):
        chain.send(f.createRound(ROUND + 1, close, close + DAY), chain.owner)
    with reverts("resolution before close"):
        chain.send(f.createRound(ROUND + 1, close, close - 1), chain.operator)
    with reverts("no such round"):
        chain.send(f.authorizeStake(ROUND + 5, model_key(), os.urandom(32), NMR), chain.alice)


def test_a_round_never_resolved_gives_each_stake_back(chain: Chain) -> None:
    f = chain.tournament.functions
    chain.open_round(ROUND)
    model = model_key()
    chain.stake(ROUND, model, chain.alice, 10 * NMR)
    resolve_time = f.rounds(ROUND).call()[1]
    rescue_at = resolve_time + f.RESCUE_DELAY().call()
    chain.travel_to(rescue_at - 10)
    with reverts("round may still resolve"):
        chain.send(f.rescueStake(ROUND, model), chain.alice)
    chain.travel_to(rescue_at)
    with reverts("caller is not the staker"):
        chain.send(f.rescueStake(ROUND, model), chain.owner)
    with reverts("round expired"):
        chain.send(f.resolveRound(ROUND, os.urandom(32), 10 * NMR, 0), chain.operator)
    chain.send(f.rescueStake(ROUND, model), chain.alice)
    assert chain.balance(chain.alice) == 1_000 * NMR
    assert chain.held() == 0
    with reverts("no stake to rescue"):
        chain.send(f.rescueStake(ROUND, model), chain.alice)


@pytest.mark.parametrize("name", ["Token", "Tournament"])
def test_no_function_moves_escrow_or_upgrades(name: str) -> None:
    """The whole external surface: a new function is a deliberate change of this list."""
    functions = {item["name"] for item in load_artifact(name).abi if item["type"] == "function"}
    expected = {
        "Token": {
            "name", "symbol", "decimals", "SUPPLY", "totalSupply", "balanceOf", "allowance",
            "transfer", "transferFrom", "approve", "burn", "burnFrom",
        },
        "Tournament": {
            "TOKEN", "RESCUE_DELAY", "owner", "pendingOwner", "operator", "paused", "rounds",
            "stakes", "lastRoundId", "totalHeld", "transferOwnership", "acceptOwnership",
            "setOperator", "pause", "unpause", "recover", "createRound", "authorizeStake",
            "pullStake", "pullStakes", "resolveRound", "leafOf", "claim", "claimMany",
            "rescueStake", "nonces", "DOMAIN_SEPARATOR", "authorizeStakeBySig",
        },
    }[name]  # fmt: skip
    assert functions == expected


def test_a_signed_authorisation_stakes_for_its_signer_once(chain: Chain) -> None:
    from eth_account import Account

    f = chain.tournament.functions
    close = chain.open_round(ROUND)
    wallet = Account.create()  # a participant's wallet, with no gas of its own
    chain.send(chain.token.functions.transfer(wallet.address, 10 * NMR), chain.operator)
    chain_id, address = chain.w3.eth.chain_id, chain.tournament.address
    model = model_key()
    auth = StakeAuthorization(ROUND, model, os.urandom(32), 4 * NMR, wallet.address, 0, close)
    signature = auth.sign(wallet, chain_id, address)

    forged = StakeAuthorization(
        ROUND, model, auth.submission_hash, 9 * NMR, wallet.address, 0, close
    )
    with reverts("invalid signature"):  # a larger amount than signed
        chain.send(f.authorizeStakeBySig(*forged.arguments(signature)), chain.operator)
    other = auth.sign(Account.create(), chain_id, address)
    with reverts("invalid signature"):  # signed by another key
        chain.send(f.authorizeStakeBySig(*auth.arguments(other)), chain.operator)

    chain.send(f.authorizeStakeBySig(*auth.arguments(signature)), chain.operator)
    staker, submission, amount, locked, _ = f.stakes(ROUND, model).call()
    assert (staker, submission, amount, locked) == (
        wallet.address,
        auth.submission_hash,
        4 * NMR,
        False,
    )
    assert f.nonces(wallet.address).call() == 1
    with reverts("invalid signature"):  # replayed: the nonce has moved on
        chain.send(f.authorizeStakeBySig(*auth.arguments(signature)), chain.operator)

    late = StakeAuthorization(
        ROUND, model_key(), os.urandom(32), NMR, wallet.address, 1, close - 100
    )
    chain.travel_to(close - 50)  # the round is open, the authorisation's deadline has passed
    with reverts("authorisation expired"):
        chain.send(
            f.authorizeStakeBySig(*late.arguments(late.sign(wallet, chain_id, address))),
            chain.operator,
        )
