"""The chain settings: the node, the contracts and the operator's key, each problem named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account

from crowdquant.ledger.evm.errors import ChainConfigError
from crowdquant.ledger.evm.node import chain_config, connect, operator_account
from crowdquant.settings import Settings

TOKEN = "0x" + "ab" * 20
TOURNAMENT = "0x" + "cd" * 20


def _settings(**values: Any) -> Settings:
    return Settings(**values)


def test_every_missing_or_malformed_setting_is_named() -> None:
    with pytest.raises(ChainConfigError) as missing:
        chain_config(_settings(evm_rpc_url="http://127.0.0.1:1"))
    assert missing.value.message == (
        "the chain needs CROWDQUANT_EVM_CHAIN_ID, CROWDQUANT_EVM_TOKEN_ADDRESS, "
        "CROWDQUANT_EVM_TOURNAMENT_ADDRESS"
    )
    full = {
        "evm_rpc_url": "http://127.0.0.1:1",
        "evm_chain_id": 5,
        "evm_token_address": TOKEN,
        "evm_tournament_address": TOURNAMENT,
    }
    with pytest.raises(ChainConfigError, match="TOURNAMENT_ADDRESS is not an address"):
        chain_config(_settings(**{**full, "evm_tournament_address": "0x12"}))
    config = chain_config(_settings(**full))
    assert config.token_address.lower() == TOKEN and config.token_address != TOKEN
    assert (config.chain_id, config.confirmations) == (5, 1)


def test_the_operator_key_comes_from_a_keystore_or_the_environment(tmp_path: Path) -> None:
    account = Account.create()
    key = account.key.hex()
    assert operator_account(_settings(evm_operator_key=key)).address == account.address
    keystore = tmp_path / "operator.json"
    encrypted = Account.encrypt(account.key, "s3cret", kdf="pbkdf2", iterations=1000)
    keystore.write_text(json.dumps(encrypted))
    opened = operator_account(
        _settings(evm_operator_keystore=keystore, evm_operator_keystore_password="s3cret")
    )
    assert opened.address == account.address

    refusals = {
        "set exactly one": {},
        "exactly one of": {"evm_operator_key": key, "evm_operator_keystore": keystore},
        "is not a private key": {"evm_operator_key": "0x1234"},
        "needs CROWDQUANT_EVM_OPERATOR_KEYSTORE_PASSWORD": {"evm_operator_keystore": keystore},
        "the password does not open": {
            "evm_operator_keystore": keystore,
            "evm_operator_keystore_password": "wrong",
        },
        "cannot read the keystore": {
            "evm_operator_keystore": tmp_path / "absent.json",
            "evm_operator_keystore_password": "s3cret",
        },
    }
    for message, values in refusals.items():
        with pytest.raises(ChainConfigError, match=message):
            operator_account(_settings(**values))


def test_connect_refuses_a_node_on_another_chain_or_none(anvil: str) -> None:
    values = {"evm_token_address": TOKEN, "evm_tournament_address": TOURNAMENT}
    w3 = connect(chain_config(_settings(evm_rpc_url=anvil, evm_chain_id=31337, **values)))
    assert w3.eth.chain_id == 31337
    with pytest.raises(ChainConfigError, match="is on chain 31337, not 1"):
        connect(chain_config(_settings(evm_rpc_url=anvil, evm_chain_id=1, **values)))
    with pytest.raises(ChainConfigError, match="no node answers"):
        connect(chain_config(_settings(evm_rpc_url="http://127.0.0.1:9", evm_chain_id=1, **values)))
