"""Resolving one round on chain: gas and wall time for 10, 100 and 1,000 staked models.

    uv run python benchmarks/chain_resolution.py [--models 10,100,1000] [--anvil PATH]

On a fresh anvil node (from `scripts/check`'s `.evm-node/`, or `--anvil`), each size stakes
that many models in one round (set-up, not measured), then resolves it: the claim tree
built, the rewards allowed, the root posted with the round's burns, and every paying claim
paid in batches of 256 by the operator. It prints the gas of posting the root, of the
claims, and per model, with the root's gas as a ratio of the smallest size's (the Merkle
design keeps it flat), and the wall time. Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Any

from web3 import Web3

from crowdquant.ledger.evm.deploy import deploy_contracts
from crowdquant.ledger.evm.local_node import local_node
from crowdquant.payouts.merkle import StakeClaim, claim_tree

NMR = 10**18
BATCH = 256
ROOT = Path(__file__).resolve().parents[1]


def _gas(w3: Web3, call: Any, sender: str) -> int:
    receipt = w3.eth.wait_for_transaction_receipt(call.transact({"from": sender}))
    assert receipt["status"] == 1
    return int(receipt["gasUsed"])


def resolve_round(w3: Web3, models: int, round_id: int) -> dict[str, float]:
    owner, operator, staker = w3.eth.accounts[:3]
    deployed = deploy_contracts(w3, deployer=owner, treasury=operator, operator=operator)
    token, f = deployed.token, deployed.tournament.functions
    _gas(w3, token.functions.transfer(staker, 10 * NMR * models), operator)
    _gas(w3, token.functions.approve(deployed.tournament.address, 2**256 - 1), staker)
    close = int(w3.eth.get_block("latest")["timestamp"]) + 10_000
    _gas(w3, f.createRound(round_id, close, close), operator)
    keys = [os.urandom(32) for _ in range(models)]
    for key in keys:
        _gas(w3, f.authorizeStake(round_id, key, os.urandom(32), 10 * NMR), staker)
    for start in range(0, models, BATCH):
        _gas(w3, f.pullStakes(round_id, keys[start : start + BATCH]), operator)
    w3.provider.make_request("evm_setNextBlockTimestamp", [close])  # type: ignore[arg-type]
    w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]

    started = time.perf_counter()
    claims = [  # every third loses a tenth, the others earn a twentieth
        StakeClaim(round_id, key, 9 * NMR, 0, NMR)
        if index % 3 == 0
        else StakeClaim(round_id, key, 10 * NMR, NMR // 2, 0)
        for index, key in enumerate(keys)
    ]
    tree = claim_tree(claims)
    approve = _gas(
        w3, token.functions.approve(deployed.tournament.address, tree.total_reward), operator
    )
    root = _gas(
        w3, f.resolveRound(round_id, tree.root, tree.total_burn, tree.total_reward), operator
    )
    paid = 0
    for start in range(0, models, BATCH):
        batch = [
            (c.model, c.stake_returned, c.reward, c.burn, list(tree.proof(c.model)))
            for c in claims[start : start + BATCH]
        ]
        paid += _gas(w3, f.claimMany(round_id, batch), operator)
    seconds = time.perf_counter() - started
    assert int(f.totalHeld().call()) == 0
    return {"root": approve + root, "claims": paid, "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="10,100,1000")
    parser.add_argument(
        "--anvil", default=str(ROOT / ".evm-node" / "node_modules" / ".bin" / "anvil")
    )
    args = parser.parse_args()
    sizes = [int(size) for size in args.models.split(",")]
    print(
        f"{'models':>7} {'root gas':>10} {'root ratio':>10} {'claims gas':>11} "
        f"{'gas/model':>10} {'wall s':>7}"
    )
    with local_node(args.anvil) as url:
        w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 120}))
        reference = None
        for round_id, models in enumerate(sizes, start=1):
            got = resolve_round(w3, models, round_id)
            reference = reference or got["root"]
            per_model = (got["root"] + got["claims"]) / models
            print(
                f"{models:>7} {got['root']:>10.0f} {got['root'] / reference:>10.2f} "
                f"{got['claims']:>11.0f} {per_model:>10.0f} {got['seconds']:>7.2f}"
            )


if __name__ == "__main__":
    main()
