"""The operator's side of a tournament on chain: rounds, stake pulls, the resolution's
root and burns, and batched claims, each sent once under a business key
(`TransactionSender`), and the checks that the chain's supply and escrow add up.

Business keys name the round and, for batches, a digest of what the batch holds, so a retry
of the same work after a crash finds its first transaction. Before choosing what is left to
do, every pending transaction is settled, so a batch never repeats one that was in flight.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from crowdquant.ledger.evm.deploy import Deployment
from crowdquant.ledger.evm.sender import SentTransaction, TransactionSender

if TYPE_CHECKING:
    from crowdquant.payouts.merkle import ClaimTree

MAX_BATCH = 256
"""The contract's bound on one batch of pulls or claims."""
SUPPLY = 11_000_000 * 10**18


def model_key(model_id: uuid.UUID) -> bytes:
    """A model's 32-byte key on chain: its UUID's 16 bytes, left-padded with zeros."""
    return model_id.bytes.rjust(32, b"\0")


def _digest(items: Sequence[bytes]) -> str:
    return hashlib.sha256(b"".join(items)).hexdigest()[:16]


@dataclass(frozen=True)
class ChainRound:
    """A round as the tournament contract holds it."""

    close_time: int
    resolve_time: int
    total_staked: int
    merkle_root: bytes
    resolved: bool
    total_burn: int
    total_reward: int
    remaining_payout: int
    remaining_burn: int


class TournamentChain:
    """The operator's moves on the tournament contract, each sent once."""

    def __init__(self, sender: TransactionSender, deployment: Deployment) -> None:
        self.sender = sender
        self.token = deployment.token
        self.tournament = deployment.tournament

    def round(self, round_id: int) -> ChainRound:
        return ChainRound(*self.tournament.functions.rounds(round_id).call())

    def create_round(self, round_id: int, close_time: int, resolve_time: int) -> SentTransaction:
        call = self.tournament.functions.createRound(round_id, close_time, resolve_time)
        return self.sender.send_call(f"round:{round_id}:create", call)

    def pull_stakes(self, round_id: int, models: Sequence[bytes]) -> list[SentTransaction]:
        """Pull, in batches, the authorised stakes of `models` not yet in escrow whose
        stakers hold and allow enough (one that does not would fail its whole batch)."""
        self.sender.resume()
        stakes, token = self.tournament.functions.stakes, self.token.functions
        spendable: dict[str, int] = {}
        left = []
        for model in models:
            staker, _, amount, locked, _ = stakes(round_id, model).call()
            if locked or int(staker, 16) == 0:
                continue
            if staker not in spendable:
                allowed = token.allowance(staker, self.tournament.address).call()
                spendable[staker] = min(allowed, token.balanceOf(staker).call())
            if amount <= spendable[staker]:
                spendable[staker] -= amount
                left.append(model)
        sent = []
        for start in range(0, len(left), MAX_BATCH):
            batch = left[start : start + MAX_BATCH]
            call = self.tournament.functions.pullStakes(round_id, batch)
            sent.append(self.sender.send_call(f"round:{round_id}:pull:{_digest(batch)}", call))
        return sent

    def resolve_round(self, tree: ClaimTree) -> SentTransaction:
        """Post the round's root with its burns, after allowing the contract its rewards."""
        round_id = tree.round_id
        operator = self.sender.account.address
        allowance = self.token.functions.allowance(operator, self.tournament.address).call()
        if allowance < tree.total_reward and not self.round(round_id).resolved:
            approve = self.token.functions.approve(self.tournament.address, tree.total_reward)
            self.sender.send_call(f"round:{round_id}:approve-rewards", approve)
        call = self.tournament.functions.resolveRound(
            round_id, tree.root, tree.total_burn, tree.total_reward
        )
        return self.sender.send_call(f"round:{round_id}:resolve", call)

    def pay_claims(self, tree: ClaimTree) -> list[SentTransaction]:
        """Pay, in batches, every claim of the round that pays something and is unpaid."""
        self.sender.resume()
        stakes = self.tournament.functions.stakes
        unpaid = [
            claim
            for claim in tree.claims
            if claim.paid > 0 and not stakes(tree.round_id, claim.model).call()[4]
        ]
        sent = []
        for start in range(0, len(unpaid), MAX_BATCH):
            batch = unpaid[start : start + MAX_BATCH]
            claims = [
                (c.model, c.stake_returned, c.reward, c.burn, list(tree.proof(c.model)))
                for c in batch
            ]
            call = self.tournament.functions.claimMany(tree.round_id, claims)
            key = f"round:{tree.round_id}:claims:{_digest([c.model for c in batch])}"
            sent.append(self.sender.send_call(key, call))
        return sent

    def audit(self, holders: Sequence[str], burned: int) -> list[str]:
        """What does not add up on chain, given every holder and the NMR burned: supply is
        the fixed supply less the burns, the holders hold it all, and the tournament holds
        at least what it owes its stakers."""
        problems = []
        supply = int(self.token.functions.totalSupply().call())
        if supply != SUPPLY - burned:
            problems.append(f"total supply {supply} is not {SUPPLY} less {burned} burned")
        held = sum(int(self.token.functions.balanceOf(h).call()) for h in holders)
        if held != supply:
            problems.append(f"the holders hold {held}, the supply is {supply}")
        escrow = int(self.token.functions.balanceOf(self.tournament.address).call())
        owed = int(self.tournament.functions.totalHeld().call())
        if escrow < owed:
            problems.append(f"the tournament holds {escrow} and owes its stakers {owed}")
        return problems
