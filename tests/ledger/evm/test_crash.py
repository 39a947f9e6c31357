"""A crash between sending a transaction and recording what came of it, then a restart (a new
sender over the same database and node), pays nothing twice: for a batch of stake pulls, a
round's root, a batch of claims and a burn. The process dies at the sender's crash point
(`chain:after-broadcast`): in process for the operator's moves, and as a real SIGKILL of a
process dispatching the ledger's queued burn. Real anvil, both databases."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant import faults
from crowdquant.clock import SystemClock
from crowdquant.db.models import EvmTransaction
from crowdquant.db.session import transaction
from crowdquant.faults import CRASH_AT
from crowdquant.ledger import BURNED, TREASURY, ledger_from_settings, stake, transfer, wallet
from crowdquant.ledger.evm.backend import EvmLedger
from crowdquant.ledger.evm.deploy import deploy_contracts
from crowdquant.ledger.evm.sender import TransactionSender
from crowdquant.ledger.evm.tournament import TournamentChain, model_key
from crowdquant.money import Currency
from crowdquant.payouts.merkle import StakeClaim, claim_tree
from crowdquant.settings import Settings
from tests.ledger.evm.conftest import NMR, SUPPLY, Chain

STEP = "chain:after-broadcast"


class KilledError(Exception):
    """The process dies here."""


@pytest.fixture
def operator_key(anvil_chain: Chain, sessions: sessionmaker[Session]) -> Any:
    """A fresh key made the tournament's operator, holding gas and 1,000 NMR for rewards,
    which the tournament may take."""
    chain, account = anvil_chain, Account.create()
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": chain.owner, "to": account.address, "value": NMR})
    )
    chain.send(chain.token.functions.transfer(account.address, 1_000 * NMR), chain.operator)
    chain.send(chain.tournament.functions.setOperator(account.address), chain.owner)
    approve = chain.token.functions.approve(chain.tournament.address, 2**256 - 1)
    _operator(chain, sessions, account).sender.send_call("approve-rewards", approve)
    return account


def _operator(chain: Chain, sessions: sessionmaker[Session], key: Any) -> TournamentChain:
    """The operator's moves as a freshly started process makes them."""
    sender = TransactionSender(chain.w3, key, sessions, SystemClock(), poll_seconds=0.01)
    return TournamentChain(sender, chain.deployment)


def _rows(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return {row.business_key: row.status for row in session.scalars(select(EvmTransaction))}


def test_a_crash_after_each_broadcast_then_a_restart_pays_nothing_twice(
    anvil_chain: Chain,
    sessions: sessionmaker[Session],
    operator_key: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain = anvil_chain
    f = chain.tournament.functions

    def die() -> None:
        raise KilledError

    monkeypatch.setattr(faults, "die", die)

    def crash_then_restart(move: Callable[[TournamentChain], Any]) -> tuple[Any, Any]:
        """`move` dies after its broadcast; a restarted operator does it again, twice."""
        monkeypatch.setenv(CRASH_AT, STEP)
        with pytest.raises(KilledError):
            move(_operator(chain, sessions, operator_key))
        assert "pending" in _rows(sessions).values()  # sent, and not recorded as mined
        monkeypatch.delenv(CRASH_AT)
        return move(_operator(chain, sessions, operator_key)), move(
            _operator(chain, sessions, operator_key)
        )

    round_id = f.lastRoundId().call() + 1
    close = chain.now() + 3_600
    _operator(chain, sessions, operator_key).create_round(round_id, close, close + 86_400)
    stakers = [chain.alice, chain.bob]
    models = [model_key(uuid.uuid4()) for _ in stakers]
    for model, staker in zip(models, stakers, strict=True):
        chain.send(f.authorizeStake(round_id, model, os.urandom(32), 10 * NMR), staker)
    before = {holder: chain.balance(holder) for holder in [*stakers, chain.tournament.address]}

    # a batch of stake pulls
    assert crash_then_restart(lambda op: op.pull_stakes(round_id, models)) == ([], [])
    assert chain.balance(chain.tournament.address) == before[chain.tournament.address] + 20 * NMR
    assert [chain.balance(s) for s in stakers] == [before[s] - 10 * NMR for s in stakers]
    assert f.rounds(round_id).call()[2] == 20 * NMR

    # the round's root, its burn and its reward
    chain.travel_to(close + 86_400)
    tree = claim_tree(
        [
            StakeClaim(round_id, models[0], 10 * NMR, 2 * NMR, 0),
            StakeClaim(round_id, models[1], 6 * NMR, 0, 4 * NMR),
        ]
    )
    supply, reserve = chain.supply(), chain.balance(operator_key.address)
    first, again = crash_then_restart(lambda op: op.resolve_round(tree))
    assert first == again and first.business_key == f"round:{round_id}:resolve"
    assert chain.supply() == supply - 4 * NMR
    assert chain.balance(operator_key.address) == reserve - 2 * NMR
    assert f.rounds(round_id).call()[3] == tree.root

    # a batch of claims
    assert crash_then_restart(lambda op: op.pay_claims(tree)) == ([], [])
    assert [chain.balance(s) for s in stakers] == [
        before[chain.alice] + 2 * NMR,
        before[chain.bob] - 4 * NMR,
    ]
    assert chain.balance(chain.tournament.address) == before[chain.tournament.address]
    assert set(_rows(sessions).values()) == {"mined"}


CHILD = """
from crowdquant.clock import SystemClock
from crowdquant.db.session import make_engine, session_factory
from crowdquant.ledger import ledger_from_settings
from crowdquant.settings import Settings

settings = Settings()
sessions = session_factory(make_engine(settings.database))
with sessions() as session:
    ledger_from_settings(settings, SystemClock()).dispatch(session)
raise SystemExit("the process was not killed")
"""


def test_a_process_killed_after_sending_a_burn_burns_it_once_after_a_restart(
    anvil_chain: Chain, sessions: sessionmaker[Session], database_url: str
) -> None:
    chain, key = anvil_chain, Account.create()
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": chain.owner, "to": key.address, "value": NMR})
    )
    deployed = deploy_contracts(
        chain.w3, deployer=chain.owner, treasury=key.address, operator=key.address
    )
    environment = {
        "CROWDQUANT_LEDGER_BACKEND": "evm",
        "CROWDQUANT_EVM_RPC_URL": chain.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        "CROWDQUANT_EVM_CHAIN_ID": "31337",
        "CROWDQUANT_EVM_TOKEN_ADDRESS": deployed.token.address,
        "CROWDQUANT_EVM_TOURNAMENT_ADDRESS": deployed.tournament.address,
        "CROWDQUANT_EVM_OPERATOR_KEY": key.key.hex(),
        "CROWDQUANT_DATABASE_URL": database_url,
    }
    settings = Settings(
        **{name[len("CROWDQUANT_") :].lower(): v for name, v in environment.items()}
    )
    books = ledger_from_settings(settings, SystemClock())
    assert isinstance(books, EvmLedger)
    alice, model = uuid.uuid4(), uuid.uuid4()
    with transaction(sessions) as session:
        books.genesis(session)
        books.post(session, "grant", Currency.NMR, transfer(TREASURY, wallet(alice), 50 * NMR))
        books.post(session, "stake", Currency.NMR, transfer(wallet(alice), stake(model), 20 * NMR))
        books.post(session, "burn-r1", Currency.NMR, transfer(stake(model), BURNED, 3 * NMR))

    child = subprocess.run(
        [sys.executable, "-c", CHILD],
        env={**os.environ, **environment, CRASH_AT: STEP},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert deployed.token.functions.totalSupply().call() == SUPPLY - 3 * NMR  # sent and mined
    assert _rows(sessions) == {"burn:burn-r1": "pending"}  # not recorded

    restarted = ledger_from_settings(settings, SystemClock())
    assert isinstance(restarted, EvmLedger)
    with sessions() as session:
        assert [sent.business_key for sent in restarted.dispatch(session)] == ["burn:burn-r1"]
        assert restarted.dispatch(session) == []
    assert deployed.token.functions.totalSupply().call() == SUPPLY - 3 * NMR
    with transaction(sessions) as session:
        assert restarted.verify(session).problems == ()
