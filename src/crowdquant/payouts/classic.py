"""The classic rule: payout = at_risk × clip(payout_factor × (c·CORR + m·MMC − hurdle), ±clip).

The same arithmetic pays the per-round-stake rule (`RoundStakeRule`), whose payout factor is
a fixed number rather than min(1, stake_threshold / total at risk).

Everything is exact: multipliers are Decimals, scores are read at their float repr (0.02 is
2/100), the arithmetic is in Fractions, and the payout is truncated toward zero so neither a
reward nor a burn ever exceeds the exact amount.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from crowdquant.payouts.inputs import check_unique, float_decimal
from crowdquant.payouts.rules import MultiplierRule


@dataclass(frozen=True)
class ClassicEntry:
    """One staked submission: NMR units at risk and its scores (None or NaN: not scored)."""

    key: str
    at_risk: int
    corr: float | None
    mmc: float | None


@dataclass(frozen=True)
class ClassicPayouts:
    """A round's payouts: key → signed NMR units (positive a reward, negative a burn)."""

    payout_factor: Fraction
    total_at_risk: int
    payouts: dict[str, int]


def exact_score(name: str, score: float) -> Fraction:
    """A finite float score as the Fraction of its repr."""
    if not math.isfinite(score):
        raise ValueError(f"{name} must be finite, got {score!r}")
    return Fraction(float_decimal(score))


def payout_factor(rule: MultiplierRule, total_at_risk: int) -> Fraction:
    """min(1, stake_threshold / total_at_risk), 1 when nothing is at risk; a per-round-stake
    rule's factor is its own."""
    if total_at_risk < 0:
        raise ValueError(f"total_at_risk must not be negative, got {total_at_risk}")
    return rule.factor_for(total_at_risk)


def classic_score(rule: MultiplierRule, corr: float | None, mmc: float | None) -> Fraction | None:
    """c·CORR + m·MMC, exactly; None without a CORR, and a missing MMC counts as 0."""
    if corr is None or math.isnan(corr):
        return None
    score = Fraction(rule.corr_multiplier) * exact_score("corr", corr)
    if mmc is not None and not math.isnan(mmc):
        score += Fraction(rule.mmc_multiplier) * exact_score("mmc", mmc)
    return score


def clipped(value: Fraction, clip: Fraction) -> Fraction:
    """value clamped to [−clip, +clip]."""
    return max(-clip, min(clip, value))


def entry_payout(rule: MultiplierRule, factor: Fraction, entry: ClassicEntry) -> int:
    """One entry's signed payout in NMR units, truncated toward zero."""
    if entry.at_risk <= 0:
        return 0
    try:
        score = classic_score(rule, entry.corr, entry.mmc)
    except ValueError as error:
        raise ValueError(f"{entry.key}: {error}") from None
    if score is None:
        return 0
    beyond = score - Fraction(rule.hurdle)
    return int(entry.at_risk * clipped(factor * beyond, Fraction(rule.clip)))


def classic_payouts(rule: MultiplierRule, entries: Sequence[ClassicEntry]) -> ClassicPayouts:
    """Every entry's payout under `rule` (zeros included); duplicate keys are refused."""
    check_unique(entry.key for entry in entries)
    total = sum(entry.at_risk for entry in entries if entry.at_risk > 0)
    factor = payout_factor(rule, total)
    payouts = {entry.key: entry_payout(rule, factor, entry) for entry in entries}
    return ClassicPayouts(payout_factor=factor, total_at_risk=total, payouts=payouts)
