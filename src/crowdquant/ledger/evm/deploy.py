"""Put the contracts on a chain and bind them, through web3."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crowdquant.ledger.evm.artifacts import load_artifact

if TYPE_CHECKING:
    from web3 import Web3
    from web3.contract import Contract


@dataclass(frozen=True)
class Deployment:
    """The token and the tournament contract, bound to one chain."""

    token: Contract
    tournament: Contract


def bind(w3: Web3, name: str, address: str) -> Contract:
    """Contract `name` (an artifact's name) at `address`."""
    return w3.eth.contract(address=w3.to_checksum_address(address), abi=load_artifact(name).abi)


def _deploy(w3: Web3, name: str, sender: str, *args: object) -> Contract:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor(*args).transact({"from": sender})
    )
    if receipt["status"] != 1 or receipt["contractAddress"] is None:
        raise RuntimeError(f"deploying {name} failed")
    return bind(w3, name, receipt["contractAddress"])


def deploy_contracts(w3: Web3, *, deployer: str, treasury: str, operator: str) -> Deployment:
    """Deploy the token (its whole supply to `treasury`) and the tournament (owned by
    `deployer`, run by `operator`), sending from an account the node holds unlocked."""
    token = _deploy(w3, "Token", deployer, treasury)
    tournament = _deploy(w3, "Tournament", deployer, token.address, operator)
    return Deployment(token=token, tournament=tournament)
