"""Payout rules as data: defaults, round trips through JSON, and every refusal named."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crowdquant.money import NMR_UNIT
from crowdquant.payouts import (
    ClassicRule,
    ClassicV1Rule,
    PayoutRule,
    PayoutRuleError,
    Rules2017Rule,
    default_rule,
    rule_from_data,
    rule_to_data,
    rule_with,
)


def decimals(low: str, high: str | None = None, places: int = 8) -> st.SearchStrategy[Decimal]:
    return st.decimals(
        min_value=Decimal(low),
        max_value=None if high is None else Decimal(high),
        places=places,
        allow_nan=False,
        allow_infinity=False,
    )


@st.composite
def classic_rules(draw: st.DrawFn) -> ClassicRule:
    clip = draw(decimals("0.00000001", "1"))
    return ClassicRule(
        corr_multiplier=draw(decimals("0", "100")),
        mmc_multiplier=draw(decimals("0", "100")),
        clip=clip,
        stake_threshold=draw(st.integers(1, 10**30)),
        hurdle=draw(decimals("0", str(clip))),
    )


classic_v1_rules = st.builds(
    ClassicV1Rule,
    corr_multiplier=decimals("0", "100"),
    mmc_multiplier=decimals("0", "100"),
    clip=decimals("0.00000001", "1"),
    stake_threshold=st.integers(1, 10**30),
)
legacy_rules = st.builds(
    Rules2017Rule,
    benchmark_logloss=decimals("0.00000001", "10"),
    consistency_threshold=decimals("0", "1"),
    staking_pool_usd=st.integers(0, 10**15),
    rank_prize_usd=decimals("0", "1000000", places=2),
    rank_prize_decay=decimals("0", "10"),
    rank_prize_places=st.integers(0, 10_000),
    nmr_per_usd=decimals("0", "1000"),
)


def test_defaults() -> None:
    classic = default_rule("classic")
    assert classic == ClassicRule()
    assert (classic.corr_multiplier, classic.mmc_multiplier) == (Decimal("0.5"), Decimal(2))
    assert classic.clip == Decimal("0.05")
    assert classic.stake_threshold == 72_000 * NMR_UNIT
    assert (classic.version, classic.hurdle) == ("classic-v2", Decimal("0.001"))
    legacy = default_rule("legacy2017")
    assert legacy == Rules2017Rule()
    assert legacy.benchmark_logloss == Decimal("0.69314718")
    assert (legacy.staking_pool_usd, legacy.rank_prize_places) == (100_000, 100)
    with pytest.raises(PayoutRuleError, match="kind: unknown, got 'modern'"):
        default_rule("modern")


def test_data_is_strings_with_the_version() -> None:
    assert rule_to_data(ClassicRule()) == {
        "version": "classic-v2",
        "corr_multiplier": "0.5",
        "mmc_multiplier": "2",
        "clip": "0.05",
        "stake_threshold": "72000000000000000000000",
        "hurdle": "0.001",
    }
    data = rule_to_data(Rules2017Rule())
    assert data["version"] == "legacy2017-v1"
    assert data["benchmark_logloss"] == "0.69314718"
    assert all(isinstance(value, str) for value in data.values())
    assert (ClassicRule.kind, Rules2017Rule.kind) == ("classic", "legacy2017")


def test_rounds_recorded_by_classic_v1_read_back_without_a_hurdle() -> None:
    recorded = {  # what rounds recorded before classic-v2 hold
        "version": "classic-v1",
        "corr_multiplier": "0.5",
        "mmc_multiplier": "2",
        "clip": "0.05",
        "stake_threshold": "72000000000000000000000",
    }
    rule = rule_from_data(recorded)
    assert type(rule) is ClassicV1Rule
    assert rule.version == "classic-v1"
    assert rule.hurdle == 0
    assert rule.terms().hurdle is None
    assert ClassicRule().terms().hurdle == Decimal("0.001")
    assert rule_to_data(rule) == {**recorded, "hurdle": "0"}


@given(st.one_of(classic_rules(), classic_v1_rules, legacy_rules))
def test_round_trip_through_json(rule: PayoutRule) -> None:
    data = json.loads(json.dumps(rule_to_data(rule)))
    back = rule_from_data(data)
    assert back == rule
    assert type(back) is type(rule)
    assert rule_to_data(back) == rule_to_data(rule)


@given(classic_rules())
def test_round_trip_through_overrides(rule: ClassicRule) -> None:
    assert rule_with("classic", rule_to_data(rule)) == rule


def test_numbers_are_accepted_and_missing_fields_default() -> None:
    rule = rule_from_data({"version": "classic-v2", "clip": 0.1, "stake_threshold": 5})
    assert rule == ClassicRule(clip=Decimal("0.1"), stake_threshold=5)  # 0.1 at its repr
    rule = rule_from_data({"version": "classic-v2", "corr_multiplier": 1, "clip": Decimal("1")})
    assert rule == ClassicRule(corr_multiplier=Decimal(1), clip=Decimal(1))
    assert rule_from_data({"version": "legacy2017-v1"}) == Rules2017Rule()
    assert rule_from_data({"version": "classic-v1", "stake_threshold": " 12 "}) == ClassicV1Rule(
        stake_threshold=12
    )
    assert rule_from_data({"version": "classic-v2", "hurdle": 0}) == ClassicRule(hurdle=Decimal(0))


def test_rule_with_overrides() -> None:
    rule = rule_with("legacy2017", {"staking_pool_usd": 50_000, "nmr_per_usd": "2.5"})
    assert rule == Rules2017Rule(staking_pool_usd=50_000, nmr_per_usd=Decimal("2.5"))
    assert rule_with("classic", {}) == ClassicRule()
    assert rule_with("classic", {"version": "classic-v2", "clip": "0.25"}) == ClassicRule(
        clip=Decimal("0.25")
    )
    with pytest.raises(PayoutRuleError, match="version: 'classic-v1' does not match"):
        rule_with("classic", {"version": "classic-v1"})  # new rounds pay by the current rule
    with pytest.raises(PayoutRuleError, match="version: 'legacy2017-v1' does not match"):
        rule_with("classic", {"version": "legacy2017-v1"})
    with pytest.raises(PayoutRuleError, match="kind: unknown"):
        rule_with("nope", {})
    with pytest.raises(PayoutRuleError, match="clip: must be in"):
        rule_with("classic", {"clip": "0"})
    with pytest.raises(PayoutRuleError, match="benchmark_logloss: unknown field for classic-v2"):
        rule_with("classic", {"benchmark_logloss": "0.69"})


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["version", "classic-v1"], "rule: must be a mapping"),
        ({}, "version: missing"),
        ({"clip": "0.05"}, "version: missing"),
        ({"version": "classic-v3"}, "version: unknown, got 'classic-v3'"),
        ({"version": 1}, "version: unknown, got 1"),
        ({"version": "classic-v1", "bonus": "1"}, "bonus: unknown field for classic-v1"),
        ({"version": "classic-v1", "kind": "classic"}, "kind: unknown field"),
        ({"version": "classic-v1", "clip": "lots"}, "clip: must be a number, got 'lots'"),
        ({"version": "classic-v1", "clip": None}, "clip: must be a number, got None"),
        ({"version": "classic-v1", "clip": True}, "clip: must be a number, got True"),
        ({"version": "classic-v1", "clip": [0.1]}, "clip: must be a number"),
        ({"version": "classic-v1", "clip": "NaN"}, "clip: must be a finite number"),
        ({"version": "classic-v1", "clip": float("inf")}, "clip: must be a finite number"),
        ({"version": "classic-v1", "stake_threshold": "1.5"}, "stake_threshold: must be an int"),
        ({"version": "classic-v1", "stake_threshold": 1.0}, "stake_threshold: must be an int"),
        ({"version": "classic-v1", "stake_threshold": False}, "stake_threshold: must be an int"),
        ({"version": "classic-v1", "stake_threshold": "9" * 5000}, "stake_threshold: must be"),
        ({"version": "classic-v1", "corr_multiplier": "-0.1"}, "corr_multiplier: must not be"),
        ({"version": "classic-v1", "mmc_multiplier": -1}, "mmc_multiplier: must not be negative"),
        ({"version": "classic-v1", "clip": "0"}, r"clip: must be in \(0, 1\], got Decimal\('0'\)"),
        ({"version": "classic-v1", "clip": "1.01"}, r"clip: must be in \(0, 1\]"),
        ({"version": "classic-v1", "stake_threshold": 0}, "stake_threshold: must be positive"),
        ({"version": "classic-v1", "stake_threshold": "-5"}, "stake_threshold: must be positive"),
        ({"version": "classic-v1", "hurdle": "0.001"}, "hurdle: classic-v1 has none"),
        ({"version": "classic-v2", "hurdle": "-0.001"}, r"hurdle: must be in \[0, clip\]"),
        ({"version": "classic-v2", "hurdle": "0.06"}, r"hurdle: must be in \[0, clip\]"),
        ({"version": "classic-v2", "hurdle": "NaN"}, "hurdle: must be a finite number"),
        ({"version": "round-stake-v1", "hurdle": "-1"}, r"hurdle: must be in \[0, clip\]"),
        ({"version": "legacy2017-v1", "benchmark_logloss": "0"}, "benchmark_logloss: must be pos"),
        (
            {"version": "legacy2017-v1", "consistency_threshold": "1.1"},
            r"consistency_thres.*\[0, 1\]",
        ),
        ({"version": "legacy2017-v1", "consistency_threshold": -0.1}, "consistency_threshold"),
        ({"version": "legacy2017-v1", "staking_pool_usd": -1}, "staking_pool_usd: must not be"),
        ({"version": "legacy2017-v1", "rank_prize_usd": "-1"}, "rank_prize_usd: must not be"),
        ({"version": "legacy2017-v1", "rank_prize_decay": "-1"}, "rank_prize_decay: must not be"),
        ({"version": "legacy2017-v1", "rank_prize_places": -1}, "rank_prize_places: must not be"),
        ({"version": "legacy2017-v1", "nmr_per_usd": "-4"}, "nmr_per_usd: must not be negative"),
        ({"version": "legacy2017-v1", "clip": "0.05"}, "clip: unknown field for legacy2017-v1"),
    ],
)
def test_bad_data_is_refused_naming_the_field(data: Any, message: str) -> None:
    with pytest.raises(PayoutRuleError, match=message):
        rule_from_data(data)


def test_rules_check_themselves_and_are_frozen() -> None:
    with pytest.raises(PayoutRuleError, match="clip: must be in"):
        ClassicRule(clip=Decimal(2))
    with pytest.raises(PayoutRuleError, match="nmr_per_usd: must be a finite number"):
        Rules2017Rule(nmr_per_usd=Decimal("NaN"))
    assert issubclass(PayoutRuleError, ValueError)
    rule = ClassicRule()
    with pytest.raises(AttributeError):
        rule.clip = Decimal("0.1")  # type: ignore[misc]
