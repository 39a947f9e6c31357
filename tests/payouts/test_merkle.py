"""Stake claims as a Merkle tree: every proof leads to the root, nothing else does."""

from __future__ import annotations

import random

import hypothesis.strategies as st
import pytest
from hypothesis import given, settings

from crowdquant.payouts.merkle import (
    StakeClaim,
    claim_leaf,
    claim_tree,
    hash_pair,
    verify_claim,
)


def _claims(round_id: int, count: int) -> list[StakeClaim]:
    return [
        StakeClaim(round_id, index.to_bytes(32, "big"), 10 * index, index % 3, index % 2)
        for index in range(1, count + 1)
    ]


@given(st.integers(min_value=1, max_value=40), st.randoms(use_true_random=False))
@settings(max_examples=30, deadline=None)
def test_every_claim_proves_against_the_root_whatever_the_order(
    count: int, rng: random.Random
) -> None:
    claims = _claims(5, count)
    tree = claim_tree(claims)
    shuffled = list(claims)
    rng.shuffle(shuffled)
    assert claim_tree(shuffled).root == tree.root
    for claim in claims:
        assert verify_claim(claim, tree.proof(claim.model), tree.root)
        assert len(tree.proof(claim.model)) <= max(count - 1, 0).bit_length()


def test_a_changed_claim_or_a_borrowed_proof_fails() -> None:
    claims = _claims(5, 6)
    tree = claim_tree(claims)
    first, second = claims[0], claims[1]
    bigger = StakeClaim(5, first.model, first.stake_returned, first.reward + 1, first.burn)
    assert not verify_claim(bigger, tree.proof(first.model), tree.root)
    assert not verify_claim(first, tree.proof(second.model), tree.root)
    other_round = StakeClaim(6, first.model, first.stake_returned, first.reward, first.burn)
    assert not verify_claim(other_round, tree.proof(first.model), tree.root)


def test_one_claim_is_its_own_root_and_totals_add_up() -> None:
    (claim,) = _claims(9, 1)
    tree = claim_tree([claim])
    assert tree.root == claim_leaf(claim) and tree.proof(claim.model) == ()
    many = claim_tree(_claims(9, 4))
    assert (many.total_burn, many.total_reward) == (2, 1 + 2 + 0 + 1)
    assert hash_pair(b"a" * 32, b"b" * 32) == hash_pair(b"b" * 32, b"a" * 32)


def test_bad_claims_are_refused() -> None:
    with pytest.raises(ValueError, match="at least one claim"):
        claim_tree([])
    with pytest.raises(ValueError, match="of one round"):
        claim_tree([*_claims(1, 1), *_claims(2, 1)])
    with pytest.raises(ValueError, match="one claim per model"):
        claim_tree(_claims(1, 2) + _claims(1, 1))
    with pytest.raises(ValueError, match="32 bytes"):
        StakeClaim(1, b"short", 0, 0, 0)
    with pytest.raises(ValueError, match="burn must be an unsigned"):
        StakeClaim(1, bytes(32), 0, 0, -1)
