"""The operator's moves on a real node (anvil), each sent once: a round created, stakes
pulled, the root posted with its burns, claims paid; a crash and a restart in the middle
pay nothing twice, and the chain's supply and escrow add up."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import SystemClock
from crowdquant.ledger.evm.sender import TransactionSender
from crowdquant.ledger.evm.tournament import TournamentChain, model_key
from crowdquant.payouts.merkle import StakeClaim, claim_tree
from tests.ledger.evm.conftest import NMR, SUPPLY, Chain


class KilledError(Exception):
    """The process dies here."""


@pytest.fixture
def operator_key(anvil_chain: Chain) -> Any:
    """A fresh key made the tournament's operator, holding gas and 1,000 NMR for rewards."""
    chain, account = anvil_chain, Account.create()
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": chain.owner, "to": account.address, "value": NMR})
    )
    chain.send(chain.token.functions.transfer(account.address, 1_000 * NMR), chain.operator)
    chain.send(chain.tournament.functions.setOperator(account.address), chain.owner)
    return account


def _operator(chain: Chain, sessions: sessionmaker[Session], key: Any) -> TournamentChain:
    sender = TransactionSender(chain.w3, key, sessions, SystemClock(), poll_seconds=0.01)
    return TournamentChain(sender, chain.deployment)


def test_a_round_run_by_the_operator_pays_each_claim_once_across_a_crash(
    anvil_chain: Chain, sessions: sessionmaker[Session], operator_key: Any
) -> None:
    chain = anvil_chain
    f = chain.tournament.functions
    operator = _operator(chain, sessions, operator_key)
    round_id = f.lastRoundId().call() + 1
    close = chain.now() + 3_600
    operator.create_round(round_id, close, close + 20 * 86_400)
    assert operator.create_round(round_id, close, close + 20 * 86_400).business_key

    ids = [uuid.uuid4() for _ in range(3)]
    models = [model_key(model_id) for model_id in ids]
    stakers = [chain.alice, chain.bob, chain.carol]
    before = {staker: chain.balance(staker) for staker in stakers}
    for model, staker in zip(models, stakers, strict=True):
        chain.send(f.authorizeStake(round_id, model, os.urandom(32), 10 * NMR), staker)
    # dave authorises a stake without allowing the contract his tokens, and never stakes
    dave, nobody = chain.w3.eth.accounts[5], model_key(uuid.uuid4())
    chain.send(chain.token.functions.transfer(dave, 10 * NMR), chain.operator)
    unfunded = model_key(uuid.uuid4())
    chain.send(f.authorizeStake(round_id, unfunded, os.urandom(32), 10 * NMR), dave)
    operator.pull_stakes(round_id, [*models, unfunded, nobody])
    assert operator.pull_stakes(round_id, models) == []  # all in escrow already
    assert f.stakes(round_id, unfunded).call()[3] is False
    assert operator.round(round_id).total_staked == 30 * NMR

    chain.travel_to(close + 20 * 86_400)
    tree = claim_tree(
        [
            StakeClaim(round_id, models[0], 10 * NMR, 2 * NMR, 0),
            StakeClaim(round_id, models[1], 7 * NMR, 0, 3 * NMR),
            StakeClaim(round_id, models[2], 0, 0, 10 * NMR),
        ]
    )
    supply = chain.supply()

    def die(raw: bytes) -> None:
        raise KilledError

    operator.sender.broadcast = die
    with pytest.raises(KilledError):
        operator.resolve_round(tree)
    restarted = _operator(chain, sessions, operator_key)
    restarted.resolve_round(tree)
    restarted.resolve_round(tree)
    assert chain.supply() == supply - 13 * NMR
    assert restarted.round(round_id).resolved

    [batch] = restarted.pay_claims(tree)
    assert restarted.pay_claims(tree) == []  # a whole loss pays nothing, so needs no claim
    assert restarted.pay_claims(tree) == []
    assert chain.balance(chain.alice) == before[chain.alice] + 2 * NMR
    assert chain.balance(chain.bob) == before[chain.bob] - 3 * NMR
    assert chain.balance(chain.carol) == before[chain.carol] - 10 * NMR
    transfers = chain.token.events.Transfer().get_logs(from_block=0)
    holders = sorted({log.args.receiver for log in transfers} - {"0x" + "0" * 40})
    burned = SUPPLY - chain.supply()
    assert restarted.audit(holders, burned) == []
    assert restarted.audit(holders, burned + 1) == [
        f"total supply {chain.supply()} is not {SUPPLY} less {burned + 1} burned"
    ]
    assert batch.block_number > 0


def test_model_keys_are_the_uuid_padded_to_32_bytes() -> None:
    model_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert model_key(model_id).hex() == "0" * 32 + "12345678123456781234567812345678"
