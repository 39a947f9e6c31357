"""The chain a process talks to, from the settings: the node, the contracts and the
operator's key. The key comes from an encrypted keystore file or from the environment,
never from the database."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crowdquant.ledger.evm.errors import ChainConfigError
from crowdquant.settings import Settings

if TYPE_CHECKING:
    from eth_account.signers.local import LocalAccount
    from web3 import Web3


@dataclass(frozen=True)
class ChainConfig:
    rpc_url: str
    chain_id: int
    token_address: str
    tournament_address: str
    confirmations: int
    receipt_timeout_seconds: float


def chain_config(settings: Settings) -> ChainConfig:
    """The chain settings, every missing or malformed one named."""
    from web3 import Web3

    fields = {
        "evm_rpc_url": settings.evm_rpc_url,
        "evm_chain_id": settings.evm_chain_id,
        "evm_token_address": settings.evm_token_address,
        "evm_tournament_address": settings.evm_tournament_address,
    }
    missing = [f"CROWDQUANT_{name.upper()}" for name, value in fields.items() if value is None]
    if missing:
        raise ChainConfigError(f"the chain needs {', '.join(missing)}")
    addresses = {
        "CROWDQUANT_EVM_TOKEN_ADDRESS": settings.evm_token_address,
        "CROWDQUANT_EVM_TOURNAMENT_ADDRESS": settings.evm_tournament_address,
    }
    for name, address in addresses.items():
        if not Web3.is_address(address):
            raise ChainConfigError(f"{name} is not an address: {address!r}")
    assert settings.evm_rpc_url is not None and settings.evm_chain_id is not None
    return ChainConfig(
        rpc_url=settings.evm_rpc_url,
        chain_id=settings.evm_chain_id,
        token_address=Web3.to_checksum_address(str(settings.evm_token_address)),
        tournament_address=Web3.to_checksum_address(str(settings.evm_tournament_address)),
        confirmations=settings.evm_confirmations,
        receipt_timeout_seconds=settings.evm_receipt_timeout_seconds,
    )


def operator_account(settings: Settings) -> LocalAccount:
    """The operator's signing key: from `evm_operator_keystore` (with its password) or
    from `evm_operator_key`, exactly one of them."""
    from eth_account import Account

    keystore, key = settings.evm_operator_keystore, settings.evm_operator_key
    if (keystore is None) == (key is None):
        raise ChainConfigError(
            "set exactly one of CROWDQUANT_EVM_OPERATOR_KEYSTORE and CROWDQUANT_EVM_OPERATOR_KEY"
        )
    if key is not None:
        try:
            from_key: LocalAccount = Account.from_key(key.get_secret_value())
            return from_key
        except (ValueError, TypeError):
            raise ChainConfigError("CROWDQUANT_EVM_OPERATOR_KEY is not a private key") from None
    assert keystore is not None
    password = settings.evm_operator_keystore_password
    if password is None:
        raise ChainConfigError("the keystore needs CROWDQUANT_EVM_OPERATOR_KEYSTORE_PASSWORD")
    try:
        encrypted = json.loads(keystore.read_text())
    except (OSError, ValueError) as exc:
        raise ChainConfigError(f"cannot read the keystore {keystore}: {exc}") from None
    try:
        secret = Account.decrypt(encrypted, password.get_secret_value())
    except (ValueError, KeyError, TypeError):
        raise ChainConfigError(f"the password does not open the keystore {keystore}") from None
    from_keystore: LocalAccount = Account.from_key(secret)
    return from_keystore


def connect(config: ChainConfig) -> Web3:
    """A web3 client on the configured node, refusing a node on another chain."""
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(config.rpc_url, request_kwargs={"timeout": 30}))
    try:
        chain_id = w3.eth.chain_id
    except OSError as exc:
        raise ChainConfigError(f"no node answers at {config.rpc_url}: {exc}") from None
    if chain_id != config.chain_id:
        raise ChainConfigError(
            f"the node at {config.rpc_url} is on chain {chain_id}, not {config.chain_id}"
        )
    return w3
