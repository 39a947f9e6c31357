"""Transactions sent once per business event on a real node (anvil), whatever retries and
crashes come between signing, recording, broadcasting and the receipt; on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from eth_account import Account
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import SystemClock
from crowdquant.db.models import EvmTransaction
from crowdquant.db.session import transaction
from crowdquant.ledger.evm.errors import (
    BusinessKeyConflict,
    ChainCallRefused,
    ChainTransactionReverted,
)
from crowdquant.ledger.evm.sender import TransactionSender
from tests.ledger.evm.conftest import NMR, Chain


class KilledError(Exception):
    """The process dies here."""


def _sender(chain: Chain, sessions: sessionmaker[Session], account: Any) -> TransactionSender:
    return TransactionSender(chain.w3, account, sessions, SystemClock(), poll_seconds=0.01)


@pytest.fixture
def operator_key(anvil_chain: Chain) -> Any:
    """A fresh signing key holding gas and 100 NMR."""
    account = Account.create()
    chain = anvil_chain
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": chain.owner, "to": account.address, "value": 10**18})
    )
    chain.send(chain.token.functions.transfer(account.address, 100 * NMR), chain.operator)
    return account


def _grant(chain: Chain, to: str, amount: int) -> Any:
    return chain.token.functions.transfer(to, amount)


def _rows(sessions: sessionmaker[Session]) -> list[tuple[str, str]]:
    with sessions() as session:
        return [
            (row.business_key, row.status)
            for row in session.scalars(select(EvmTransaction).order_by(EvmTransaction.nonce))
        ]


def test_a_business_key_pays_once(
    anvil_chain: Chain, sessions: sessionmaker[Session], operator_key: Any
) -> None:
    chain, sender = anvil_chain, _sender(anvil_chain, sessions, operator_key)
    before = chain.balance(chain.carol)
    first = sender.send_call("grant:carol:1", _grant(chain, chain.carol, 3 * NMR))
    again = sender.send_call("grant:carol:1", _grant(chain, chain.carol, 3 * NMR))
    assert again == first
    assert chain.balance(chain.carol) == before + 3 * NMR
    with pytest.raises(BusinessKeyConflict):
        sender.send_call("grant:carol:1", _grant(chain, chain.carol, 4 * NMR))
    with pytest.raises(ChainCallRefused):  # more than the key holds: nothing recorded
        sender.send_call("grant:carol:2", _grant(chain, chain.carol, 1_000 * NMR))
    assert _rows(sessions) == [("grant:carol:1", "mined")]
    assert chain.balance(chain.carol) == before + 3 * NMR


def test_a_crash_before_the_broadcast_then_a_restart_pays_once(
    anvil_chain: Chain, sessions: sessionmaker[Session], operator_key: Any
) -> None:
    chain, crashing = anvil_chain, _sender(anvil_chain, sessions, operator_key)
    before = chain.balance(chain.carol)

    def die(raw: bytes) -> None:
        raise KilledError

    crashing.broadcast = die
    with pytest.raises(KilledError):
        crashing.send_call("grant:carol:7", _grant(chain, chain.carol, 5 * NMR))
    assert _rows(sessions) == [("grant:carol:7", "pending")]
    assert chain.balance(chain.carol) == before

    restarted = _sender(chain, sessions, operator_key)
    [settled] = restarted.resume()
    retried = restarted.send_call("grant:carol:7", _grant(chain, chain.carol, 5 * NMR))
    assert retried == settled
    assert chain.balance(chain.carol) == before + 5 * NMR
    assert _rows(sessions) == [("grant:carol:7", "mined")]


def test_a_crash_after_the_broadcast_then_a_retry_pays_once(
    anvil_chain: Chain, sessions: sessionmaker[Session], operator_key: Any
) -> None:
    chain, crashing = anvil_chain, _sender(anvil_chain, sessions, operator_key)
    before = chain.balance(chain.carol)
    broadcasts: list[bytes] = []

    def broadcast_then_die(raw: bytes) -> None:
        sent = chain.w3.eth.send_raw_transaction(raw)
        chain.w3.eth.wait_for_transaction_receipt(sent)  # anvil mines it after answering
        broadcasts.append(raw)
        raise KilledError

    crashing.broadcast = broadcast_then_die
    with pytest.raises(KilledError):
        crashing.send_call("grant:carol:8", _grant(chain, chain.carol, 2 * NMR))
    assert chain.balance(chain.carol) == before + 2 * NMR  # mined, not yet recorded
    assert _rows(sessions) == [("grant:carol:8", "pending")]

    restarted = _sender(chain, sessions, operator_key)
    restarted.broadcast = broadcasts.append  # a second broadcast would show here
    sent = restarted.send_call("grant:carol:8", _grant(chain, chain.carol, 2 * NMR))
    assert len(broadcasts) == 1 and sent.tx_hash
    assert chain.balance(chain.carol) == before + 2 * NMR
    assert _rows(sessions) == [("grant:carol:8", "mined")]


def test_a_transaction_whose_nonce_was_taken_is_signed_again_and_paid_once(
    anvil_chain: Chain, sessions: sessionmaker[Session], operator_key: Any
) -> None:
    chain, crashing = anvil_chain, _sender(anvil_chain, sessions, operator_key)
    before = chain.balance(chain.carol)

    def die(raw: bytes) -> None:
        raise KilledError

    crashing.broadcast = die
    with pytest.raises(KilledError):
        crashing.send_call("grant:carol:9", _grant(chain, chain.carol, NMR))
    # another transaction from the same key takes the recorded nonce
    w3 = chain.w3
    other = operator_key.sign_transaction(
        {
            "chainId": w3.eth.chain_id,
            "nonce": w3.eth.get_transaction_count(operator_key.address),
            "to": chain.bob,
            "value": 1,
            "gas": 21_000,
            "gasPrice": 2 * w3.eth.gas_price,
        }
    )
    w3.eth.wait_for_transaction_receipt(w3.eth.send_raw_transaction(other.raw_transaction))

    restarted = _sender(chain, sessions, operator_key)
    restarted.send_call("grant:carol:10", _grant(chain, chain.carol, 2 * NMR))  # settles 9 first
    assert chain.balance(chain.carol) == before + 3 * NMR
    assert _rows(sessions) == [("grant:carol:9", "mined"), ("grant:carol:10", "mined")]


def test_a_reverted_transaction_keeps_its_key_spent(
    anvil_chain: Chain,
    sessions: sessionmaker[Session],
    operator_key: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, sender = anvil_chain, _sender(anvil_chain, sessions, operator_key)
    before = chain.balance(chain.carol)
    # the state changes between the estimate and the block: the node mines a revert
    monkeypatch.setattr(sender, "_estimate_gas", lambda call: 100_000)
    too_much = _grant(chain, chain.carol, 1_000 * NMR)
    with pytest.raises(ChainTransactionReverted):
        sender.send_call("grant:carol:11", too_much)
    with pytest.raises(ChainTransactionReverted):
        sender.send_call("grant:carol:11", too_much)
    assert _rows(sessions) == [("grant:carol:11", "reverted")]
    assert chain.balance(chain.carol) == before


def test_a_queued_call_is_sent_only_if_its_transaction_commits(
    anvil_chain: Chain, sessions: sessionmaker[Session], operator_key: Any
) -> None:
    chain, sender = anvil_chain, _sender(anvil_chain, sessions, operator_key)
    before = chain.balance(chain.carol)
    grant = _grant(chain, chain.carol, 4 * NMR)
    data = grant._encode_transaction_data()
    with pytest.raises(KilledError), transaction(sessions) as session:
        sender.enqueue(session, "grant:carol:20", chain.token.address, data)
        raise KilledError  # the business rows beside it roll back
    assert _rows(sessions) == [] and sender.dispatch() == []

    with transaction(sessions) as session:
        sender.enqueue(session, "grant:carol:21", chain.token.address, data)
        sender.enqueue(session, "grant:carol:21", chain.token.address, data)
        refused = _grant(chain, chain.carol, 1_000 * NMR)._encode_transaction_data()
        sender.enqueue(session, "grant:carol:22", chain.token.address, refused)
    with pytest.raises(BusinessKeyConflict), transaction(sessions) as session:
        sender.enqueue(session, "grant:carol:21", chain.token.address, refused)
    assert chain.balance(chain.carol) == before  # nothing sent before the dispatch

    [sent] = _sender(chain, sessions, operator_key).dispatch()  # e.g. after a restart
    assert sent.business_key == "grant:carol:21"
    assert sender.dispatch() == []
    assert chain.balance(chain.carol) == before + 4 * NMR
    assert sorted(_rows(sessions)) == [("grant:carol:21", "mined"), ("grant:carol:22", "refused")]
    with pytest.raises(ChainCallRefused):
        sender.send("grant:carol:22", chain.token.address, refused)
