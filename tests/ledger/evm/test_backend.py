"""The `evm` ledger backend on a real node (anvil): the books in the database, every burn
sent once to the token on chain after its transaction commits, and an audit that sees both."""

from __future__ import annotations

import uuid

import pytest
from eth_account import Account
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import SystemClock
from crowdquant.db.session import transaction
from crowdquant.ledger import (
    BURNED,
    TREASURY,
    Ledger,
    ledger_from_settings,
    stake,
    transfer,
    wallet,
)
from crowdquant.ledger.evm.backend import EvmLedger
from crowdquant.ledger.evm.deploy import deploy_contracts
from crowdquant.ledger.evm.errors import ChainConfigError
from crowdquant.money import Currency
from crowdquant.settings import Settings
from tests.ledger.evm.conftest import NMR, SUPPLY, Chain

ALICE, MODEL = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def books(anvil_chain: Chain) -> EvmLedger:
    """An `evm` ledger on a fresh token whose supply the operator's key holds."""
    chain, key = anvil_chain, Account.create()
    chain.w3.eth.wait_for_transaction_receipt(
        chain.w3.eth.send_transaction({"from": chain.owner, "to": key.address, "value": NMR})
    )
    deployed = deploy_contracts(
        chain.w3, deployer=chain.owner, treasury=key.address, operator=key.address
    )
    settings = Settings(
        ledger_backend="evm",
        evm_rpc_url=chain.w3.provider.endpoint_uri,  # type: ignore[attr-defined]
        evm_chain_id=31337,
        evm_token_address=deployed.token.address,
        evm_tournament_address=deployed.tournament.address,
        evm_operator_key=key.key.hex(),
    )
    ledger = ledger_from_settings(settings, SystemClock())
    assert isinstance(ledger, EvmLedger) and isinstance(ledger, Ledger)
    return ledger


def _dispatch(books: EvmLedger, sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return [sent.business_key for sent in books.dispatch(session)]


def _problems(books: EvmLedger, sessions: sessionmaker[Session]) -> list[str]:
    with transaction(sessions) as session:
        return [problem.message for problem in books.verify(session).problems]


def test_a_burn_on_the_books_is_burned_once_on_chain(
    books: EvmLedger, sessions: sessionmaker[Session]
) -> None:
    def stake_then_burn(session: Session) -> None:
        books.genesis(session)
        books.post(session, "grant", Currency.NMR, transfer(TREASURY, wallet(ALICE), 50 * NMR))
        books.post(session, "stake", Currency.NMR, transfer(wallet(ALICE), stake(MODEL), 20 * NMR))
        books.post(session, "burn-r1", Currency.NMR, transfer(stake(MODEL), BURNED, 3 * NMR))

    with pytest.raises(RuntimeError), transaction(sessions) as session:
        stake_then_burn(session)
        raise RuntimeError("rolled back")  # nothing queued survives a rollback
    assert _dispatch(books, sessions) == []

    with transaction(sessions) as session:
        stake_then_burn(session)
    assert _problems(books, sessions) == ["the chain call 'burn:burn-r1' is queued"]
    assert books.token.functions.totalSupply().call() == SUPPLY

    assert _dispatch(books, sessions) == ["burn:burn-r1"]
    assert books.token.functions.totalSupply().call() == SUPPLY - 3 * NMR
    assert _problems(books, sessions) == []

    with transaction(sessions) as session:  # a retried post queues nothing more
        books.post(session, "burn-r1", Currency.NMR, transfer(stake(MODEL), BURNED, 3 * NMR))
        assert books.balance(session, BURNED, Currency.NMR) == 3 * NMR
    assert _dispatch(books, sessions) == []
    assert books.token.functions.totalSupply().call() == SUPPLY - 3 * NMR

    # a burn on chain that the books do not hold is found
    with sessions() as session:
        books.sender(session).send_call("stray-burn", books.token.functions.burn(NMR))
    assert _problems(books, sessions) == [
        f"the token's supply on chain is {SUPPLY - 4 * NMR}, the books say "
        f"{SUPPLY - 3 * NMR} ({SUPPLY} less {3 * NMR} burned)"
    ]


def test_the_evm_backend_needs_its_settings() -> None:
    with pytest.raises(ChainConfigError, match="CROWDQUANT_EVM_RPC_URL"):
        ledger_from_settings(Settings(ledger_backend="evm"), SystemClock())
