"""A round's stake claims as a Merkle tree, hashed exactly as the tournament contract does.

A claim says what one model's stake in one round comes to at resolution: the part of the
stake returned, the reward and the burn (ints, 10⁻¹⁸ NMR). Its leaf is
``keccak256(keccak256(abi.encode(round_id, model, stake_returned, reward, burn)))``; a
node hashes its two children in ascending order (``keccak256(low ‖ high)``), so a proof is
just the siblings from the leaf up. Leaves are sorted before the tree is built, so the root
depends only on the set of claims. An odd node out moves up a level unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from eth_hash.auto import keccak

WORD = 32
UINT256_LIMIT = 1 << 256


@dataclass(frozen=True)
class StakeClaim:
    """What one model's stake in one round comes to at resolution."""

    round_id: int
    model: bytes
    """32 bytes naming the model on chain."""
    stake_returned: int
    reward: int
    burn: int

    def __post_init__(self) -> None:
        if len(self.model) != WORD:
            raise ValueError(f"a model key is {WORD} bytes, not {len(self.model)}")
        for name in ("round_id", "stake_returned", "reward", "burn"):
            value = getattr(self, name)
            if not 0 <= value < UINT256_LIMIT:
                raise ValueError(f"{name} must be an unsigned 256-bit int, not {value}")

    @property
    def paid(self) -> int:
        """What the claim pays the staker: the stake returned and the reward."""
        return self.stake_returned + self.reward


@dataclass(frozen=True)
class ClaimTree:
    """A round's claims, their root and each model's proof."""

    round_id: int
    root: bytes
    claims: tuple[StakeClaim, ...]
    proofs: dict[bytes, tuple[bytes, ...]]
    """Per model key, the sibling hashes from its leaf up to the root."""

    @property
    def total_burn(self) -> int:
        return sum(claim.burn for claim in self.claims)

    @property
    def total_reward(self) -> int:
        return sum(claim.reward for claim in self.claims)

    def proof(self, model: bytes) -> tuple[bytes, ...]:
        """`model`'s proof (KeyError for a model with no claim)."""
        return self.proofs[model]


def claim_leaf(claim: StakeClaim) -> bytes:
    """The claim's leaf, as the contract's `leafOf` computes it."""
    encoded = b"".join(
        value.to_bytes(WORD, "big") if isinstance(value, int) else value
        for value in (claim.round_id, claim.model, claim.stake_returned, claim.reward, claim.burn)
    )
    return keccak(keccak(encoded))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """The parent of two nodes, whatever their order."""
    return keccak(a + b) if a < b else keccak(b + a)


def claim_tree(claims: Sequence[StakeClaim]) -> ClaimTree:
    """The tree of one round's claims (at least one, one per model)."""
    if not claims:
        raise ValueError("a claim tree needs at least one claim")
    round_ids = {claim.round_id for claim in claims}
    if len(round_ids) != 1:
        raise ValueError(f"claims of one round only, not of rounds {sorted(round_ids)}")
    models = [claim.model for claim in claims]
    if len(set(models)) != len(models):
        raise ValueError("one claim per model")
    leaves = sorted((claim_leaf(claim), claim.model) for claim in claims)
    level = [leaf for leaf, _ in leaves]
    positions = {model: index for index, (_, model) in enumerate(leaves)}
    paths: dict[bytes, list[bytes]] = {model: [] for model in positions}
    while len(level) > 1:
        for model, index in positions.items():
            sibling = index ^ 1
            if sibling < len(level):
                paths[model].append(level[sibling])
            positions[model] = index // 2
        level = [
            hash_pair(level[i], level[i + 1]) if i + 1 < len(level) else level[i]
            for i in range(0, len(level), 2)
        ]
    return ClaimTree(
        round_id=round_ids.pop(),
        root=level[0],
        claims=tuple(claims),
        proofs={model: tuple(path) for model, path in paths.items()},
    )


def verify_claim(claim: StakeClaim, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether `proof` leads from `claim`'s leaf to `root` (the contract's check)."""
    node = claim_leaf(claim)
    for sibling in proof:
        node = hash_pair(node, sibling)
    return node == root
