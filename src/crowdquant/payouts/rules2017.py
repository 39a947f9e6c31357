"""The 2017 rule the seeds ran: beat the logloss benchmark to win.

Entries that passed the gates (originality, concordance, consistency) and beat the benchmark
on live data are ranked by live logloss and take the rank prizes (USD and NMR, decaying as
r^−decay). Stakes bid in a confidence auction for a weekly USD pool: by confidence, highest
first, each is awarded s/c USD until the pool is spent, paid only if it wins. A stake is
burned whole when its live logloss is worse than the benchmark, returned otherwise (also when
unscored). Losses are read at their float repr, and the benchmark is a Decimal.

The benchmark is the round's benchmark models' live logloss where the round has one (each
entry's `benchmark_logloss`), else the rule's `benchmark_logloss` (ln 2: a tournament whose
dataset has no benchmark models).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction

from crowdquant.money import NMR_UNIT, USD_CENTS
from crowdquant.payouts.inputs import check_unique, float_decimal
from crowdquant.payouts.rules import Rules2017Rule

Bid = tuple[str, int, Decimal, int]
NMR_CENT = NMR_UNIT // 100


@dataclass(frozen=True)
class Rules2017Entry:
    """One submission: its live logloss (None: unscored), gates passed, and its stake if any.

    `order` breaks ties: lower staked earlier. `benchmark_logloss`: the benchmark models'
    live logloss on the round (None: the rule's fixed benchmark).
    """

    key: str
    live_logloss: float | None
    eligible: bool
    stake: int = 0
    confidence: Decimal | None = None
    order: int = 0
    benchmark_logloss: float | None = None


@dataclass(frozen=True)
class Rules2017Outcome:
    """What one entry gets: awards and prizes (USD cents, NMR units) and its stake's fate."""

    key: str
    rank: int | None
    won: bool
    auction_award_usd: int
    award_usd: int
    prize_usd: int
    prize_nmr: int
    burn: int
    returned: int


def passes_gates(
    rule: Rules2017Rule,
    *,
    consistency: float | None,
    original: bool | None,
    concordant: bool | None,
) -> bool:
    """Whether the measured gates pass; a gate not measured (None, or a NaN consistency) does."""
    consistent = (
        consistency is None
        or math.isnan(consistency)
        or float_decimal(consistency) >= rule.consistency_threshold
    )
    return consistent and original is not False and concordant is not False


def check_bid(bid: Bid) -> None:
    """ValueError unless the stake is positive and the confidence in (0, 1]."""
    key, stake, confidence, _ = bid
    if stake <= 0:
        raise ValueError(f"{key}: stake must be positive, got {stake}")
    if not (isinstance(confidence, Decimal) and confidence.is_finite() and 0 < confidence <= 1):
        raise ValueError(f"{key}: confidence must be a Decimal in (0, 1], got {confidence!r}")


def asked_usd(stake: int, confidence: Decimal) -> int:
    """What a bid asks for: s/c USD, in whole cents (rounded down)."""
    return math.floor(Fraction(stake * USD_CENTS, NMR_UNIT) / Fraction(confidence))


def auction_awards(pool_usd: int, bids: Sequence[Bid]) -> dict[str, int]:
    """USD cents awarded to each (key, stake, confidence, order) bid from a pool of cents.

    Highest confidence first (then lower order, then key), each bid takes s/c USD until the
    pool runs out: the last one inside takes what is left, those after get 0.
    """
    if pool_usd < 0:
        raise ValueError(f"pool_usd must not be negative, got {pool_usd}")
    check_unique(key for key, *_ in bids)
    for bid in bids:
        check_bid(bid)
    awards = dict.fromkeys((key for key, *_ in bids), 0)
    left = pool_usd
    for key, stake, confidence, _ in sorted(bids, key=lambda b: (-b[2], b[3], b[0])):
        awards[key] = min(asked_usd(stake, confidence), left)
        left -= awards[key]
    return awards


def rank_share(rule: Rules2017Rule, rank: int) -> Fraction:
    """r^−decay: a float power, read at its repr."""
    return Fraction(float_decimal(rank ** -float(rule.rank_prize_decay)))


def rank_prizes(rule: Rules2017Rule, count: int) -> list[tuple[int, int]]:
    """(USD cents, NMR units) for ranks 1..min(count, places).

    The top prize times r^−decay: in USD rounded half to even to the cent, in NMR
    (nmr_per_usd per USD) truncated to 0.01 NMR.
    """
    prizes = []
    for rank in range(1, min(count, rule.rank_prize_places) + 1):
        usd = Fraction(rule.rank_prize_usd) * rank_share(rule, rank)
        nmr_cents = int(usd * Fraction(rule.nmr_per_usd) * 100)
        prizes.append((round(usd * USD_CENTS), nmr_cents * NMR_CENT))
    return prizes


def benchmark_of(rule: Rules2017Rule, measured: float | None) -> Decimal:
    """The benchmark an entry is judged by: the measured one (at its float repr), else the
    rule's."""
    if measured is None or not math.isfinite(measured):
        return rule.benchmark_logloss
    return float_decimal(measured)


def beats(rule: Rules2017Rule, logloss: float | None, benchmark: float | None = None) -> bool:
    """Whether a live logloss is strictly better (lower) than the benchmark."""
    return (
        logloss is not None
        and not math.isnan(logloss)
        and float_decimal(logloss) < benchmark_of(rule, benchmark)
    )


def burns(rule: Rules2017Rule, logloss: float | None, benchmark: float | None = None) -> bool:
    """Whether a live logloss is strictly worse (higher) than the benchmark."""
    return (
        logloss is not None
        and not math.isnan(logloss)
        and float_decimal(logloss) > benchmark_of(rule, benchmark)
    )


def ranks(rule: Rules2017Rule, entries: Sequence[Rules2017Entry]) -> dict[str, int]:
    """1-based ranks of the eligible winners by live logloss (ties: lower order, then key)."""
    winners = sorted(
        (float_decimal(entry.live_logloss), entry.order, entry.key)
        for entry in entries
        if entry.eligible
        and entry.live_logloss is not None
        and beats(rule, entry.live_logloss, entry.benchmark_logloss)
    )
    return {key: rank for rank, (_, _, key) in enumerate(winners, start=1)}


def bids_2017(entries: Sequence[Rules2017Entry]) -> list[Bid]:
    """The auction bids: eligible entries with a positive stake and a confidence."""
    return [
        (entry.key, entry.stake, entry.confidence, entry.order)
        for entry in entries
        if entry.eligible and entry.stake > 0 and entry.confidence is not None
    ]


def rules2017_payouts(
    rule: Rules2017Rule, entries: Sequence[Rules2017Entry]
) -> list[Rules2017Outcome]:
    """Every entry's outcome under `rule`, in input order; duplicate keys are refused."""
    check_unique(entry.key for entry in entries)
    for entry in entries:
        if entry.stake < 0:
            raise ValueError(f"{entry.key}: stake must not be negative, got {entry.stake}")
    ranked = ranks(rule, entries)
    prizes = rank_prizes(rule, len(ranked))
    awards = auction_awards(rule.staking_pool_usd, bids_2017(entries))
    outcomes = []
    for entry in entries:
        rank = ranked.get(entry.key)
        prize_usd, prize_nmr = (
            prizes[rank - 1] if rank is not None and rank <= len(prizes) else (0, 0)
        )
        won = beats(rule, entry.live_logloss, entry.benchmark_logloss)
        auction = awards.get(entry.key, 0)
        burned = entry.stake if burns(rule, entry.live_logloss, entry.benchmark_logloss) else 0
        outcomes.append(
            Rules2017Outcome(
                key=entry.key,
                rank=rank,
                won=won,
                auction_award_usd=auction,
                award_usd=auction if won else 0,
                prize_usd=prize_usd,
                prize_nmr=prize_nmr,
                burn=burned,
                returned=entry.stake - burned,
            )
        )
    return outcomes
