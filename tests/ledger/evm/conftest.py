"""The contracts on a chain, and a driver for the tests: an in-process EVM (eth-tester) for
the contracts' unit tests; `tests/ledger/evm/test_anvil.py` drives a real node the same way."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from web3 import Web3

from crowdquant.ledger.evm.deploy import Deployment, deploy_contracts
from crowdquant.ledger.evm.local_node import local_node
from crowdquant.payouts.merkle import ClaimTree, StakeClaim, claim_tree

NMR = 10**18
SUPPLY = 11_000_000 * NMR
DAY = 86_400


class Chain:
    """The deployed contracts, the actors' accounts and the moves a round is made of."""

    def __init__(self, w3: Web3, travel: Callable[[int], None], *, gas: int | None = None) -> None:
        self.w3 = w3
        self._travel = travel
        self._gas = {"gas": gas} if gas else {}
        self.owner, self.operator, self.alice, self.bob, self.carol = w3.eth.accounts[:5]
        self.deployment: Deployment = deploy_contracts(
            w3, deployer=self.owner, treasury=self.operator, operator=self.operator
        )
        self.token = self.deployment.token
        self.tournament = self.deployment.tournament
        for staker in (self.alice, self.bob, self.carol):
            self.send(self.token.functions.transfer(staker, 1_000 * NMR), self.operator)
            self.send(self.token.functions.approve(self.tournament.address, 2**256 - 1), staker)
        self.send(self.token.functions.approve(self.tournament.address, 2**256 - 1), self.operator)

    def send(self, call: Any, sender: str) -> Any:
        """Send `call` from `sender` and wait for its receipt (which must succeed)."""
        sent = call.transact({"from": sender, **self._gas})
        receipt = self.w3.eth.wait_for_transaction_receipt(sent)
        if receipt["status"] != 1:
            call.call({"from": sender})  # the same call again, to raise with the reason
            raise AssertionError("the transaction reverted")
        return receipt

    def now(self) -> int:
        return int(self.w3.eth.get_block("latest")["timestamp"])

    def travel_to(self, timestamp: int) -> None:
        """Mine a block at `timestamp`, so the next transactions run after it."""
        self._travel(timestamp)

    def balance(self, account: str) -> int:
        return int(self.token.functions.balanceOf(account).call())

    def supply(self) -> int:
        return int(self.token.functions.totalSupply().call())

    def held(self) -> int:
        return int(self.tournament.functions.totalHeld().call())

    def open_round(self, round_id: int, *, close_in: int = DAY, resolve_in: int = 30 * DAY) -> int:
        """Create round `round_id`; its close time."""
        close = self.now() + close_in
        self.send(
            self.tournament.functions.createRound(round_id, close, close + resolve_in),
            self.operator,
        )
        return close

    def stake(self, round_id: int, model: bytes, staker: str, amount: int) -> None:
        """Authorise a stake tied to a submission hash and pull it into escrow (staker)."""
        f = self.tournament.functions
        self.send(f.authorizeStake(round_id, model, os.urandom(32), amount), staker)
        self.send(f.pullStake(round_id, model), staker)

    def resolve(self, round_id: int, claims: Sequence[StakeClaim]) -> ClaimTree:
        """Post the claims' root, their burns and rewards, once the round may resolve."""
        resolve_time = self.tournament.functions.rounds(round_id).call()[1]
        if self.now() < resolve_time:
            self.travel_to(resolve_time)
        tree = claim_tree(claims)
        self.send(
            self.tournament.functions.resolveRound(
                round_id, tree.root, tree.total_burn, tree.total_reward
            ),
            self.operator,
        )
        return tree

    def claim_args(self, tree: ClaimTree, claim: StakeClaim) -> tuple[Any, ...]:
        return (
            claim.model,
            claim.stake_returned,
            claim.reward,
            claim.burn,
            list(tree.proof(claim.model)),
        )


def model_key() -> bytes:
    return os.urandom(32)


@contextmanager
def reverts(reason: str) -> Iterator[None]:
    """The block's transaction must revert with `reason`, whatever the node's error type."""
    with pytest.raises(Exception) as caught:
        yield
    assert reason in str(caught.value), f"expected a revert with {reason!r}, got {caught.value!r}"


@pytest.fixture(scope="module")
def tester_chain() -> Chain:
    from web3 import EthereumTesterProvider

    provider = EthereumTesterProvider()
    # a fixed gas limit skips estimating each transaction
    return Chain(Web3(provider), provider.ethereum_tester.time_travel, gas=5_000_000)


@pytest.fixture
def chain(tester_chain: Chain) -> Iterator[Chain]:
    """The module's chain, rolled back after each test."""
    tester = tester_chain.w3.provider.ethereum_tester  # type: ignore[attr-defined]
    snapshot = tester.take_snapshot()
    yield tester_chain
    tester.revert_to_snapshot(snapshot)


ROOT = Path(__file__).parents[3]


def anvil_binary() -> str:
    """The anvil that `scripts/check` installs, or the one `CROWDQUANT_TEST_ANVIL` names."""
    binary = os.environ.get("CROWDQUANT_TEST_ANVIL") or str(
        ROOT / ".evm-node" / "node_modules" / ".bin" / "anvil"
    )
    if not Path(binary).is_file():
        pytest.fail(
            f"no anvil at {binary} (scripts/check installs it; or set CROWDQUANT_TEST_ANVIL)"
        )
    return binary


@pytest.fixture(scope="module")
def anvil() -> Iterator[str]:
    """A fresh anvil node on loopback; its JSON-RPC URL."""
    with local_node(anvil_binary()) as url:
        yield url


@pytest.fixture(scope="module")
def anvil_chain(anvil: str) -> Chain:
    w3 = Web3(Web3.HTTPProvider(anvil, request_kwargs={"timeout": 30}))

    def travel(timestamp: int) -> None:
        w3.provider.make_request("evm_setNextBlockTimestamp", [timestamp])  # type: ignore[arg-type]
        w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    return Chain(w3, travel)
