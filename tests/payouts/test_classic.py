"""The classic rule: the docs' example exactly, clipping, the payout factor, truncation, and
classic-v2's hurdle. Numerai's arithmetic is checked on classic-v1, which has no hurdle."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdquant.money import NMR_UNIT
from crowdquant.payouts import (
    ClassicEntry,
    ClassicRule,
    ClassicV1Rule,
    classic_payouts,
    payout_factor,
)
from crowdquant.payouts.classic import classic_score

RULE = ClassicV1Rule(corr_multiplier=Decimal(1), mmc_multiplier=Decimal(2))


def test_the_docs_example() -> None:
    """100 NMR at risk of 720,000, threshold 72,000 → factor 0.1; 0.1 × 0.06 × 100 = 0.6 NMR."""
    entries = [
        ClassicEntry("alice", 100 * NMR_UNIT, corr=0.02, mmc=0.02),
        ClassicEntry("others", 719_900 * NMR_UNIT, corr=None, mmc=None),
    ]
    result = classic_payouts(RULE, entries)
    assert result.payout_factor == Fraction(1, 10)
    assert result.total_at_risk == 720_000 * NMR_UNIT
    assert result.payouts == {"alice": 6 * NMR_UNIT // 10, "others": 0}


def test_payout_factor() -> None:
    rule = ClassicRule()
    assert payout_factor(rule, 0) == 1
    assert payout_factor(rule, 1) == 1
    assert payout_factor(rule, 72_000 * NMR_UNIT) == 1
    assert payout_factor(rule, 144_000 * NMR_UNIT) == Fraction(1, 2)
    assert payout_factor(rule, 72_000 * NMR_UNIT + 1) < 1
    with pytest.raises(ValueError, match="total_at_risk must not be negative"):
        payout_factor(rule, -1)


def test_full_factor_below_the_threshold() -> None:
    rule = ClassicV1Rule()  # 0.5·CORR + 2·MMC
    entries = [ClassicEntry("a", 10 * NMR_UNIT, corr=0.01, mmc=0.005)]
    result = classic_payouts(rule, entries)
    assert result.payout_factor == 1
    assert result.payouts == {"a": 15 * NMR_UNIT // 100}  # 10 × (0.005 + 0.01) = 0.15


@pytest.mark.parametrize(("corr", "sign"), [(0.2, 1), (-0.2, -1), (0.05, 1), (-0.05, -1)])
def test_clipped_at_five_percent(corr: float, sign: int) -> None:
    rule = ClassicV1Rule(corr_multiplier=Decimal(1), mmc_multiplier=Decimal(0))
    result = classic_payouts(rule, [ClassicEntry("a", 1_000 * NMR_UNIT, corr=corr, mmc=0.9)])
    assert result.payouts == {"a": sign * 50 * NMR_UNIT}


def test_clip_applies_after_the_payout_factor() -> None:
    rule = ClassicV1Rule(corr_multiplier=Decimal(1), stake_threshold=100 * NMR_UNIT)
    entries = [
        ClassicEntry("a", 100 * NMR_UNIT, corr=0.08, mmc=None),  # 0.08 × 0.5 = 0.04: inside
        ClassicEntry("b", 100 * NMR_UNIT, corr=0.2, mmc=None),  # 0.1: clipped to 0.05
    ]
    assert classic_payouts(rule, entries).payouts == {"a": 4 * NMR_UNIT, "b": 5 * NMR_UNIT}


def test_truncated_toward_zero_on_both_signs() -> None:
    rule = ClassicV1Rule(corr_multiplier=Decimal(1), mmc_multiplier=Decimal(0))
    entries = [
        ClassicEntry("up", 7, corr=0.01, mmc=None),  # 0.07 → 0
        ClassicEntry("down", 7, corr=-0.01, mmc=None),  # −0.07 → 0, not −1
        ClassicEntry("up_more", 333, corr=0.01, mmc=None),  # 3.33 → 3
        ClassicEntry("down_more", 333, corr=-0.01, mmc=None),  # −3.33 → −3
    ]
    assert classic_payouts(rule, entries).payouts == {
        "up": 0,
        "down": 0,
        "up_more": 3,
        "down_more": -3,
    }


def test_missing_scores_and_stakes() -> None:
    entries = [
        ClassicEntry("no_corr", 10 * NMR_UNIT, corr=None, mmc=0.01),
        ClassicEntry("nan_corr", 10 * NMR_UNIT, corr=math.nan, mmc=0.01),
        ClassicEntry("no_mmc", 10 * NMR_UNIT, corr=0.01, mmc=None),
        ClassicEntry("nan_mmc", 10 * NMR_UNIT, corr=0.01, mmc=math.nan),
        ClassicEntry("no_stake", 0, corr=0.01, mmc=0.01),
        ClassicEntry("negative_stake", -5 * NMR_UNIT, corr=0.01, mmc=0.01),
    ]
    result = classic_payouts(RULE, entries)
    assert result.total_at_risk == 40 * NMR_UNIT
    assert result.payouts == {
        "no_corr": 0,
        "nan_corr": 0,
        "no_mmc": NMR_UNIT // 10,
        "nan_mmc": NMR_UNIT // 10,
        "no_stake": 0,
        "negative_stake": 0,
    }
    assert classic_score(RULE, math.nan, 0.1) is None
    assert classic_score(RULE, 0.01, math.nan) == Fraction(1, 100)


def test_empty_round_and_refusals() -> None:
    assert classic_payouts(RULE, []).payouts == {}
    assert classic_payouts(RULE, []).payout_factor == 1
    with pytest.raises(ValueError, match=r"duplicate keys: \['a'\]"):
        classic_payouts(RULE, [ClassicEntry("a", 1, 0.1, 0.1), ClassicEntry("a", 2, 0.1, 0.1)])
    with pytest.raises(ValueError, match="b: corr must be finite, got inf"):
        classic_payouts(RULE, [ClassicEntry("b", 1, math.inf, None)])
    with pytest.raises(ValueError, match="c: mmc must be finite"):
        classic_payouts(RULE, [ClassicEntry("c", 1, 0.1, -math.inf)])


def test_scores_are_read_at_their_repr() -> None:
    assert classic_score(ClassicRule(), 0.1, 0.2) == Fraction(1, 20) + Fraction(2, 5)


def test_the_hurdle_is_taken_from_the_score_before_the_factor_and_the_clip() -> None:
    rule = ClassicRule()  # 0.5·CORR + 2·MMC − 0.001
    entries = [
        ClassicEntry("skilled", 10 * NMR_UNIT, corr=0.01, mmc=0.005),  # 10 × 0.014
        ClassicEntry("random", 10 * NMR_UNIT, corr=0.0, mmc=0.0),  # 10 × −0.001
        ClassicEntry("at_the_hurdle", 10 * NMR_UNIT, corr=0.002, mmc=0.0),
        ClassicEntry("clipped", 10 * NMR_UNIT, corr=-0.2, mmc=0.0),  # −0.101 → −0.05
        ClassicEntry("unscored", 10 * NMR_UNIT, corr=None, mmc=None),
    ]
    assert classic_payouts(rule, entries).payouts == {
        "skilled": 14 * NMR_UNIT // 100,
        "random": -NMR_UNIT // 100,
        "at_the_hurdle": 0,
        "clipped": -NMR_UNIT // 2,
        "unscored": 0,
    }
    halved = ClassicRule(stake_threshold=10 * NMR_UNIT)  # 20 at risk: factor 1/2
    result = classic_payouts(halved, entries[:2])
    assert result.payout_factor == Fraction(1, 2)
    assert result.payouts == {"skilled": 7 * NMR_UNIT // 100, "random": -NMR_UNIT // 200}
    no_hurdle = ClassicRule(hurdle=Decimal(0))
    assert (
        classic_payouts(no_hurdle, entries).payouts
        == classic_payouts(ClassicV1Rule(), entries).payouts
    )


scores = st.one_of(st.none(), st.just(math.nan), st.floats(-1, 1))
entries = st.lists(
    st.builds(
        ClassicEntry,
        key=st.text(max_size=4),
        at_risk=st.integers(-(10**22), 10**24),
        corr=scores,
        mmc=scores,
    ),
    max_size=12,
    unique_by=lambda entry: entry.key,
)
rules = st.builds(
    ClassicRule,
    corr_multiplier=st.decimals(0, 3, places=2),
    mmc_multiplier=st.decimals(0, 3, places=2),
    clip=st.decimals("0.01", 1, places=2),
    stake_threshold=st.integers(1, 10**23),
    hurdle=st.decimals(0, "0.01", places=4),
)


@given(rules, entries)
def test_bounded_by_the_clip_and_signed_by_the_score(
    rule: ClassicRule, entries: list[ClassicEntry]
) -> None:
    result = classic_payouts(rule, entries)
    assert list(result.payouts) == [entry.key for entry in entries]
    assert 0 < result.payout_factor <= 1
    for entry in entries:
        payout = result.payouts[entry.key]
        assert abs(payout) <= max(entry.at_risk, 0) * Fraction(rule.clip)
        score = classic_score(rule, entry.corr, entry.mmc)
        if score is None or entry.at_risk <= 0:
            assert payout == 0
        else:
            assert payout == 0 or (payout > 0) == (score > rule.hurdle)
