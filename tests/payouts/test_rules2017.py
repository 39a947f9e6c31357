"""The 2017 rule: gates, the confidence auction, rank prizes (Tournament 56), stakes' fate."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdquant.money import NMR_UNIT
from crowdquant.payouts import (
    Rules2017Entry,
    Rules2017Outcome,
    Rules2017Rule,
    auction_awards,
    passes_gates,
    rank_prizes,
    rules2017_payouts,
)

RULE = Rules2017Rule()
BENCHMARK = 0.69314718


def nmr(amount: str) -> int:
    return int(Decimal(amount) * NMR_UNIT)


def by_key(outcomes: list[Rules2017Outcome]) -> dict[str, Rules2017Outcome]:
    return {outcome.key: outcome for outcome in outcomes}


def test_gates_not_measured_pass() -> None:
    assert passes_gates(RULE, consistency=None, original=None, concordant=None)
    assert passes_gates(RULE, consistency=0.75, original=True, concordant=True)
    assert passes_gates(RULE, consistency=math.nan, original=True, concordant=None)
    assert not passes_gates(RULE, consistency=0.74, original=None, concordant=None)
    assert not passes_gates(RULE, consistency=1.0, original=False, concordant=True)
    assert not passes_gates(RULE, consistency=1.0, original=True, concordant=False)
    seventy = Rules2017Rule(consistency_threshold=Decimal("0.7"))
    assert passes_gates(seventy, consistency=7 / 10, original=None, concordant=None)


def test_auction_highest_confidence_first_and_partial_last() -> None:
    bids = [
        ("low", nmr("10"), Decimal("0.1"), 0),  # asks $100
        ("high", nmr("10"), Decimal("0.5"), 5),  # asks $20
        ("mid", nmr("30"), Decimal("0.4"), 1),  # asks $75
        ("last", nmr("1"), Decimal("0.05"), 2),  # asks $20, nothing left
    ]
    assert auction_awards(150_00, bids) == {"low": 55_00, "high": 20_00, "mid": 75_00, "last": 0}


def test_auction_pool_exactly_spent_and_larger_than_all_bids() -> None:
    bids = [("a", nmr("10"), Decimal("0.5"), 0), ("b", nmr("6"), Decimal("0.2"), 1)]
    assert auction_awards(50_00, bids) == {"a": 20_00, "b": 30_00}
    assert auction_awards(49_99, bids) == {"a": 20_00, "b": 29_99}
    assert auction_awards(1_000_00, bids) == {"a": 20_00, "b": 30_00}
    assert auction_awards(0, bids) == {"a": 0, "b": 0}
    assert auction_awards(100, []) == {}


def test_auction_asks_are_exact_and_rounded_down_to_the_cent() -> None:
    bids = [("third", nmr("1"), Decimal("0.3"), 0), ("tiny", 1, Decimal("1"), 1)]
    assert auction_awards(10_000_00, bids) == {"third": 3_33, "tiny": 0}  # $3.333…, 1e-18 NMR


def test_auction_ties_go_to_the_earlier_stake_then_the_key() -> None:
    bids = [
        ("b", nmr("10"), Decimal("0.5"), 1),
        ("late", nmr("10"), Decimal("0.5"), 2),
        ("a", nmr("10"), Decimal("0.50"), 1),
        ("early", nmr("10"), Decimal("0.5"), 0),
    ]
    assert auction_awards(50_00, bids) == {"early": 20_00, "a": 20_00, "b": 10_00, "late": 0}


@pytest.mark.parametrize(
    ("bid", "message"),
    [
        (("a", 0, Decimal("0.5"), 0), "a: stake must be positive"),
        (("a", -1, Decimal("0.5"), 0), "a: stake must be positive"),
        (("a", 1, Decimal("0"), 0), r"a: confidence must be a Decimal in \(0, 1\]"),
        (("a", 1, Decimal("1.01"), 0), "a: confidence must be"),
        (("a", 1, Decimal("NaN"), 0), "a: confidence must be"),
    ],
)
def test_auction_refuses_bad_bids(bid: tuple[str, int, Decimal, int], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        auction_awards(100, [bid])


def test_auction_refuses_duplicates_and_a_negative_pool() -> None:
    bid = ("a", 1, Decimal("0.5"), 0)
    with pytest.raises(ValueError, match="duplicate keys"):
        auction_awards(100, [bid, bid])
    with pytest.raises(ValueError, match="pool_usd must not be negative"):
        auction_awards(-1, [bid])


bids = st.lists(
    st.tuples(
        st.text(max_size=3),
        st.integers(1, 10**24),
        st.decimals("0.001", "1", places=3),
        st.integers(0, 5),
    ),
    max_size=10,
    unique_by=lambda bid: bid[0],
)


@given(st.integers(0, 10**9), bids)
def test_auction_never_exceeds_the_pool_nor_the_asks(
    pool: int, bids: list[tuple[str, int, Decimal, int]]
) -> None:
    awards = auction_awards(pool, bids)
    assert awards.keys() == {key for key, *_ in bids}
    assert sum(awards.values()) <= pool
    for key, stake, confidence, _ in bids:
        assert 0 <= awards[key] <= Fraction(stake * 100, NMR_UNIT) / Fraction(confidence)


def test_rank_prizes_match_tournament_56() -> None:
    prizes = rank_prizes(RULE, 100)
    assert len(prizes) == 100
    assert prizes[:6] == [
        (1000_00, nmr("4000.00")),
        (435_28, nmr("1741.10")),
        (267_58, nmr("1070.32")),
        (189_46, nmr("757.85")),
        (144_96, nmr("579.82")),
        (116_47, nmr("465.88")),
    ]
    assert sum(usd for usd, _ in prizes) == 3603_05
    assert sum(n for _, n in prizes) == nmr("14411.68")
    assert all(n % (NMR_UNIT // 100) == 0 for _, n in prizes)


def test_rank_prizes_count_and_places() -> None:
    assert rank_prizes(RULE, 0) == []
    assert rank_prizes(RULE, 3) == rank_prizes(RULE, 100)[:3]
    assert len(rank_prizes(RULE, 250)) == 100
    assert rank_prizes(Rules2017Rule(rank_prize_places=0), 10) == []
    flat = Rules2017Rule(rank_prize_decay=Decimal(0), rank_prize_usd=Decimal("0.005"))
    assert rank_prizes(flat, 2) == [(0, nmr("0.02"))] * 2  # half a cent rounds to even: 0


def test_stakes_burn_only_when_worse_than_the_benchmark() -> None:
    entries = [
        Rules2017Entry("worse", 0.6932, eligible=True, stake=nmr("5"), confidence=Decimal("0.5")),
        Rules2017Entry(
            "equal", BENCHMARK, eligible=True, stake=nmr("5"), confidence=Decimal("0.5")
        ),
        Rules2017Entry("better", 0.6920, eligible=True, stake=nmr("5"), confidence=Decimal("0.5")),
        Rules2017Entry("unscored", None, eligible=True, stake=nmr("5"), confidence=Decimal("0.5")),
        Rules2017Entry("nan", math.nan, eligible=True, stake=nmr("5"), confidence=Decimal("0.5")),
    ]
    outcomes = by_key(rules2017_payouts(RULE, entries))
    assert (outcomes["worse"].burn, outcomes["worse"].returned) == (nmr("5"), 0)
    for key in ("equal", "better", "unscored", "nan"):
        assert (outcomes[key].burn, outcomes[key].returned) == (0, nmr("5")), key
    assert [key for key, o in outcomes.items() if o.won] == ["better"]


def test_an_entry_with_its_rounds_benchmark_is_judged_against_it() -> None:
    def entry(key: str, logloss: float, benchmark: float | None) -> Rules2017Entry:
        return Rules2017Entry(
            key, logloss, True, nmr("5"), Decimal("0.5"), benchmark_logloss=benchmark
        )

    entries = [
        entry("behind_models", 0.690, 0.685),  # better than ln 2, worse than the models
        entry("ahead_of_models", 0.700, 0.705),  # worse than ln 2, better than the models
        entry("no_models", 0.690, None),  # the rule's ln 2
        entry("nan_models", 0.690, math.nan),  # not measured: the rule's ln 2
    ]
    outcomes = by_key(rules2017_payouts(RULE, entries))
    assert outcomes["behind_models"].burn == nmr("5") and not outcomes["behind_models"].won
    assert outcomes["behind_models"].rank is None
    for key in ("ahead_of_models", "no_models", "nan_models"):
        assert outcomes[key].won and outcomes[key].burn == 0, key
    assert outcomes["ahead_of_models"].rank == 3  # ranked by logloss among the winners


def test_no_award_without_winning() -> None:
    entries = [
        Rules2017Entry("loser", 0.70, eligible=True, stake=nmr("10"), confidence=Decimal("0.9")),
        Rules2017Entry("winner", 0.69, eligible=True, stake=nmr("10"), confidence=Decimal("0.5")),
    ]
    outcomes = by_key(rules2017_payouts(RULE, entries))
    loser, winner = outcomes["loser"], outcomes["winner"]
    assert (loser.auction_award_usd, loser.award_usd) == (11_11, 0)  # its place in the pool
    assert (loser.rank, loser.prize_usd, loser.prize_nmr) == (None, 0, 0)
    assert (winner.auction_award_usd, winner.award_usd) == (20_00, 20_00)
    assert winner == Rules2017Outcome(
        key="winner",
        rank=1,
        won=True,
        auction_award_usd=20_00,
        award_usd=20_00,
        prize_usd=1000_00,
        prize_nmr=nmr("4000"),
        burn=0,
        returned=nmr("10"),
    )


def test_ineligible_gets_nothing_but_its_stake_back_or_burned() -> None:
    entries = [
        Rules2017Entry("copy", 0.68, eligible=False, stake=nmr("10"), confidence=Decimal("0.9")),
        Rules2017Entry(
            "bad_copy", 0.70, eligible=False, stake=nmr("10"), confidence=Decimal("0.9")
        ),
        Rules2017Entry("honest", 0.69, eligible=True, stake=nmr("1"), confidence=Decimal("0.1")),
    ]
    outcomes = by_key(rules2017_payouts(Rules2017Rule(staking_pool_usd=10_00), entries))
    copy, bad_copy, honest = outcomes["copy"], outcomes["bad_copy"], outcomes["honest"]
    assert copy.won and copy.rank is None
    assert (copy.auction_award_usd, copy.award_usd, copy.prize_usd, copy.prize_nmr) == (0, 0, 0, 0)
    assert (copy.burn, copy.returned) == (0, nmr("10"))
    assert (bad_copy.burn, bad_copy.returned, bad_copy.auction_award_usd) == (nmr("10"), 0, 0)
    assert (honest.rank, honest.award_usd, honest.prize_usd) == (1, 10_00, 1000_00)  # whole pool


def test_ranks_by_logloss_then_order_then_key() -> None:
    entries = [
        Rules2017Entry("c", 0.690, eligible=True, order=3),
        Rules2017Entry("b", 0.685, eligible=True, order=2),
        Rules2017Entry("a", 0.690, eligible=True, order=1),
        Rules2017Entry("z", 0.690, eligible=True, order=1),
        Rules2017Entry("out", 0.680, eligible=False),
        Rules2017Entry("lost", 0.700, eligible=True),
        Rules2017Entry("none", None, eligible=True),
    ]
    outcomes = rules2017_payouts(RULE, entries)
    assert [o.key for o in outcomes] == [e.key for e in entries]  # input order
    assert {o.key: o.rank for o in outcomes} == {
        "c": 4,
        "b": 1,
        "a": 2,
        "z": 3,
        "out": None,
        "lost": None,
        "none": None,
    }
    prizes = rank_prizes(RULE, 4)
    assert [(o.prize_usd, o.prize_nmr) for o in outcomes[:4]] == [
        prizes[3],
        prizes[0],
        prizes[1],
        prizes[2],
    ]


def test_ranks_beyond_the_places_get_no_prize() -> None:
    rule = Rules2017Rule(rank_prize_places=1)
    entries = [Rules2017Entry("a", 0.68, eligible=True), Rules2017Entry("b", 0.69, eligible=True)]
    outcomes = by_key(rules2017_payouts(rule, entries))
    assert (outcomes["b"].rank, outcomes["b"].prize_usd, outcomes["b"].prize_nmr) == (2, 0, 0)
    assert outcomes["a"].prize_usd == 1000_00


def test_refusals() -> None:
    with pytest.raises(ValueError, match=r"duplicate keys: \['a'\]"):
        rules2017_payouts(RULE, [Rules2017Entry("a", 0.6, True), Rules2017Entry("a", 0.7, True)])
    with pytest.raises(ValueError, match="a: stake must not be negative"):
        rules2017_payouts(RULE, [Rules2017Entry("a", 0.6, True, stake=-1)])
    with pytest.raises(ValueError, match="a: confidence must be"):
        rules2017_payouts(RULE, [Rules2017Entry("a", 0.6, True, stake=1, confidence=Decimal(2))])
    unchecked = [Rules2017Entry("a", 0.6, False, stake=1, confidence=Decimal(2))]  # never bids
    assert rules2017_payouts(RULE, unchecked)[0].returned == 1
    assert rules2017_payouts(RULE, []) == []
