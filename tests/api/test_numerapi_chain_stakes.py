"""A whole round of per-round stakes on anvil, on both databases: participants register
their wallets, ask numerapi's `v3_stake_auth` for the authorisation their wallet signs and
send it to the contract. Only the scheduler's ticks drive the chain: they open the round on
the contract, pull the stakes into escrow right before the close and at it (mirrored into
the books; a round whose stakes fail to lock stays open), close the round and score it for
20 days, and at its resolution post the claims' root and burns on chain and pay the claims
in a batch; `v3_stake_claim`'s proof checks against the root. Every wallet then holds on
chain exactly what the books say, and what the database ledger's replay of the same round
(the same predictions and stakes, staked with `stake_increase` on the database's books)
pays it, to the wei (the meta model blends its submissions in the order of their models'
names, so two databases' scorings agree to the last bit). The books are sound."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner
from web3 import Web3

from crowdquant.cli import app as cli
from crowdquant.clock import ManualClock
from crowdquant.db import migrate
from crowdquant.db.models import ChainCursor, ChainEvent, ChainRound, Round, Rules, Submission
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.ledger import BURNED, stake, wallet
from crowdquant.ledger.evm.authorization import StakeAuthorization
from crowdquant.ledger.evm.backend import EvmLedger
from crowdquant.ledger.evm.deploy import Deployment, deploy_contracts
from crowdquant.ledger.evm.local_node import local_node
from crowdquant.money import Currency
from crowdquant.payouts.merkle import StakeClaim, verify_claim
from crowdquant.settings import Settings

from ..ledger.evm.conftest import SUPPLY, anvil_binary
from .staked_world import NMR, START, StakedWorld, TournamentSpec, staked_world
from .test_numerapi_payouts import classic_predictions, download_live, round_id, upload

ROUND_STAKE = 12
PLAYERS = ("alice", "bob", "carol")
GRANT = 100 * NMR
STAKES = {"alice": 10 * NMR, "bob": 5 * NMR, "carol": 2 * NMR}
DAY = timedelta(days=1)
CLOSED = START + timedelta(hours=2)  # after the close, an hour after the start
RESOLVED = START + 35 * DAY + timedelta(minutes=1)
SPEC = TournamentSpec(ROUND_STAKE, Rules.ROUND_STAKE, "v2")


@pytest.fixture
def node() -> Iterator[Web3]:
    """A fresh anvil, its genesis an hour before the test's clock starts."""
    genesis = int((START - timedelta(hours=1)).timestamp())
    with local_node(anvil_binary(), timestamp=genesis) as url:
        yield Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 30}))


def _send(w3: Web3, account: LocalAccount, call: Any) -> None:
    """`call` signed by `account` (a participant's wallet) and mined."""
    built = call.build_transaction(
        {"from": account.address, "nonce": w3.eth.get_transaction_count(account.address)}
    )
    sent = w3.eth.send_raw_transaction(account.sign_transaction(built).raw_transaction)
    assert w3.eth.wait_for_transaction_receipt(sent)["status"] == 1


def _node_gone(*args: object) -> int:
    raise ConnectionError("the node is gone")


def _travel(w3: Web3, moment: int) -> None:
    w3.provider.make_request("evm_setNextBlockTimestamp", [moment])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]


def _round(world: StakedWorld, session: Session, number: int) -> Round:
    found = session.get(Round, round_id(world, ROUND_STAKE, number))
    assert found is not None
    return found


def _submission(world: StakedWorld, name: str) -> str:
    with transaction(world.sessions) as session:
        found = session.scalar(
            select(Submission.id).where(Submission.model_id == world.model(name, ROUND_STAKE))
        )
    return str(found)


def _database_replay(tmp_path: Path) -> dict[str, int]:
    """The same round on the database's books: each player's wallet afterwards."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{tmp_path / 'replay.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with staked_world(
            session_factory(engine), tmp_path / "replay", [SPEC], PLAYERS, GRANT
        ) as world:
            world.open_round(ROUND_STAKE, resolve_after=35 * DAY)
            live = download_live(world, "alice", ROUND_STAKE, tmp_path)
            for name in PLAYERS:
                upload(world, name, ROUND_STAKE, classic_predictions(live, name))
                napi = world.napi(name, ROUND_STAKE)
                napi.stake_increase(STAKES[name] // NMR, str(world.model(name, ROUND_STAKE)))
            world.tick_at(CLOSED)
            assert f"round 1 of tournament {ROUND_STAKE} resolved" in world.tick_at(RESOLVED)
            return {name: world.balance(wallet(world.players[name].account_id)) for name in PLAYERS}
    finally:
        engine.dispose()


def test_a_round_staked_on_chain_pays_what_the_database_ledger_pays(
    sessions: sessionmaker[Session], tmp_path: Path, node: Web3, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = _database_replay(tmp_path / "db")

    w3 = node
    funder = w3.eth.accounts[0]
    operator: LocalAccount = Account.create()
    wallets: dict[str, LocalAccount] = {name: Account.create() for name in PLAYERS}
    for address in [operator.address, *(w.address for w in wallets.values())]:
        w3.eth.wait_for_transaction_receipt(
            w3.eth.send_transaction({"from": funder, "to": address, "value": 10**18})
        )
    deployed: Deployment = deploy_contracts(
        w3, deployer=funder, treasury=operator.address, operator=operator.address
    )
    token, contract = deployed.token, deployed.tournament
    clock = ManualClock(START)
    books = EvmLedger(
        Settings(
            ledger_backend="evm",
            evm_rpc_url=w3.provider.endpoint_uri,  # type: ignore[attr-defined]
            evm_chain_id=31337,
            evm_token_address=token.address,
            evm_tournament_address=contract.address,
            evm_operator_key=operator.key.hex(),
        ),
        clock,
    )
    with staked_world(
        sessions, tmp_path / "chain", [SPEC], PLAYERS, GRANT, clock=clock, ledger=books
    ) as world:
        for name, key in wallets.items():
            with world.rest(name) as api:  # registered in any case, kept checksummed
                answer = api.put("/account/wallet-address", json={"address": key.address.lower()})
                assert answer.json()["wallet_address"] == key.address
            with world.sessions() as session:  # the grant leaves the operator's key for it
                books.sender(session).send_call(
                    f"grant:{name}", token.functions.transfer(key.address, GRANT)
                )
            _send(w3, key, token.functions.approve(contract.address, 2**256 - 1))

        number = world.open_round(ROUND_STAKE, resolve_after=35 * DAY)
        ticked = world.tick_at(START)  # the scheduler opens it on chain
        assert f"round 1 of tournament {ROUND_STAKE} opened on chain (round 1 of the contract)" in (
            ticked
        )
        assert world.tick_at(START) == []  # once
        with transaction(world.sessions) as session:
            chain_round = session.get_one(ChainRound, round_id(world, ROUND_STAKE, number))
            chain_round_id = chain_round.chain_round_id
        napi = {name: world.napi(name, ROUND_STAKE) for name in PLAYERS}
        config = napi["bob"].v3_stake_config()
        assert config["address"] == contract.address
        assert config["nmrAddress"] == token.address
        assert config["serviceWallet"] == operator.address
        assert config["paused"] is False

        live = download_live(world, "alice", ROUND_STAKE, tmp_path)
        for name in PLAYERS:
            upload(world, name, ROUND_STAKE, classic_predictions(live, name))
            key = wallets[name]
            submission = _submission(world, name)
            auth = napi[name].v3_stake_auth(
                submission, key.address, max_amount=str(STAKES[name] // NMR)
            )
            assert (auth["roundId"], auth["chainId"]) == (str(chain_round_id), "31337")
            assert (auth["stakingAddress"], auth["nmrAddress"]) == (
                contract.address,
                token.address,
            )
            assert auth["maxAmount"] == auth["amount"] == str(STAKES[name])
            assert auth["submissionId"] == submission
            message = StakeAuthorization(
                round_id=int(auth["roundId"]),
                model=bytes.fromhex(auth["modelId"][2:]),
                submission_hash=bytes.fromhex(auth["submissionHash"][2:]),
                amount=int(auth["maxAmount"]),
                staker=auth["staker"],
                nonce=int(auth["nonce"]),
                deadline=int(auth["deadline"]),
            )
            signature = message.sign(key, 31337, contract.address)
            digest = bytes.fromhex(auth["authorizationDigest"][2:])
            assert Account._recover_hash(digest, vrs=signature) == key.address
            _send(w3, key, contract.functions.authorizeStakeBySig(*message.arguments(signature)))
            if name == "bob":  # the ticks just before the close pull what is authorised
                assert world.tick_at(START + timedelta(minutes=55)) == [
                    f"round 1 of tournament {ROUND_STAKE}: 2 stake(s) locked on chain"
                ]
        with pytest.raises(ValueError, match="takes its stakes on chain"):
            napi["bob"].stake_increase(1, str(world.model("bob", ROUND_STAKE)))
        with pytest.raises(ValueError, match="not your registered wallet"):
            napi["bob"].v3_stake_auth(
                _submission(world, "bob"), wallets["alice"].address, max_amount="1"
            )

        staked = napi["carol"].v3_stake_round(chain_round_id)
        assert staked["totalStaked"] == str(STAKES["alice"] + STAKES["bob"])  # not carol's yet
        with monkeypatch.context() as patched:  # a round whose stakes fail stays open
            patched.setattr("crowdquant.tournament.scheduler.pull_chain_stakes", _node_gone)
            assert world.tick_at(CLOSED) == [
                f"tournament {ROUND_STAKE}: could not lock round 1's stakes:"
                " ConnectionError: the node is gone"
            ]
        closing = world.tick_at(CLOSED)  # carol's stake pulled and mirrored, then the close
        assert closing[:2] == [
            f"round 1 of tournament {ROUND_STAKE}: 1 stake(s) locked on chain",
            f"round 1 of tournament {ROUND_STAKE} closed",
        ]
        staked = napi["carol"].v3_stake_round(chain_round_id)
        assert staked["totalStaked"] == str(sum(STAKES.values()))
        assert staked["resolved"] is False
        for name in PLAYERS:
            assert world.balance(stake(world.model(name, ROUND_STAKE))) == STAKES[name]

        carol_model = str(world.model("carol", ROUND_STAKE))
        with pytest.raises(ValueError, match="has not resolved"):
            napi["carol"].v3_stake_claim(chain_round_id, carol_model, wallets["carol"].address)
        with pytest.raises(ValueError, match="whole number"):
            napi["carol"].v3_stake_round("one")
        _travel(w3, int(RESOLVED.timestamp()))
        resolving = world.tick_at(RESOLVED)  # the root with its burns sent, the claims paid
        resolved_at = resolving.index(f"round 1 of tournament {ROUND_STAKE} resolved")
        assert resolving[resolved_at + 1] == (
            f"round 1 of tournament {ROUND_STAKE}: claims paid on chain (1 batch(es))"
        )
        resolved = napi["carol"].v3_stake_round(chain_round_id)
        assert resolved["resolved"] is True and resolved["state"] == "resolved"
        assert not [event for event in world.tick_at(RESOLVED + DAY) if "chain" in event]

        with pytest.raises(ValueError, match="staked nothing"):
            napi["carol"].v3_stake_claim(chain_round_id, carol_model, wallets["bob"].address)
        proof = napi["carol"].v3_stake_claim(chain_round_id, carol_model, wallets["carol"].address)
        assert proof["merkleRoot"] == resolved["merkleRoot"]
        assert proof["submissionId"] == _submission(world, "carol")
        burn, paid = int(proof["burnAmountWei"]), int(proof["payoutAmountWei"])
        returned = STAKES["carol"] - burn
        carol_key = bytes.fromhex(proof["modelId"][2:])
        carol_claim = StakeClaim(chain_round_id, carol_key, returned, paid - returned, burn)
        siblings = [bytes.fromhex(sibling[2:]) for sibling in proof["proof"]]
        assert verify_claim(carol_claim, siblings, bytes.fromhex(proof["merkleRoot"][2:]))
        assert contract.functions.stakes(chain_round_id, carol_key).call()[4] is (paid > 0)

        with transaction(world.sessions) as session:
            indexed = books.index(session)
            assert indexed.from_block == 0 and indexed.recorded > 0
        with transaction(world.sessions) as session:
            assert books.index(session).recorded == 0  # nothing new
            cursor = session.scalars(select(ChainCursor)).one()
            cursor.block_number = 0  # replayed from the start: nothing twice
        with transaction(world.sessions) as session:
            assert books.index(session).recorded == 0
            events = Counter(session.scalars(select(ChainEvent.event)))
        assert events["Staked"] == 3
        assert events["RoundResolved"] == events["RoundCreated"] == 1
        with transaction(world.sessions) as session:
            burned = books.balance(session, BURNED, Currency.NMR)
            assert books.verify(session).problems == ()
        chain_balances = {
            name: int(token.functions.balanceOf(key.address).call())
            for name, key in wallets.items()
        }
        books_balances = {
            name: world.balance(wallet(world.players[name].account_id)) for name in PLAYERS
        }
        assert chain_balances == books_balances
        paying = [name for name in PLAYERS if chain_balances[name] > GRANT - STAKES[name]]
        assert events["Claimed"] == len(paying) > 0  # a claim paying nothing is not sent
        assert chain_balances == expected  # to the wei
        assert chain_balances != dict.fromkeys(PLAYERS, GRANT)  # the round moved money
        assert int(token.functions.totalSupply().call()) == SUPPLY - burned
        assert int(contract.functions.totalHeld().call()) == 0
        assert int(token.functions.balanceOf(contract.address).call()) == 0

        # a transfer not mirrored yet is found by the audit, until `ledger index` reads it
        _send(w3, wallets["bob"], token.functions.transfer(wallets["alice"].address, 1))
        monkeypatch.setenv("CROWDQUANT_HOME", str(world.home))
        engine = world.sessions.kw["bind"]
        url = engine.url.render_as_string(hide_password=False)
        for name, value in {
            "CROWDQUANT_DATABASE_URL": url,
            "CROWDQUANT_LEDGER_BACKEND": "evm",
            "CROWDQUANT_EVM_RPC_URL": w3.provider.endpoint_uri,  # type: ignore[attr-defined]
            "CROWDQUANT_EVM_CHAIN_ID": "31337",
            "CROWDQUANT_EVM_TOKEN_ADDRESS": token.address,
            "CROWDQUANT_EVM_TOURNAMENT_ADDRESS": contract.address,
            "CROWDQUANT_EVM_OPERATOR_KEY": operator.key.hex(),
        }.items():
            monkeypatch.setenv(name, value)
        runner = CliRunner()
        unsound = runner.invoke(cli, ["ledger", "audit"])
        assert unsound.exit_code == 1, unsound.output
        assert f"{wallets['bob'].address} holds {chain_balances['bob'] - 1} on chain" in (
            unsound.output.replace("\n", "")
        )
        indexed_now = runner.invoke(cli, ["ledger", "index"])
        assert "1 event recorded" in indexed_now.output, indexed_now.output
        sound = runner.invoke(cli, ["ledger", "audit"])
        assert sound.exit_code == 0 and "sound" in sound.output, sound.output
