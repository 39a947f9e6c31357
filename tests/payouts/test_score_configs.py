"""The per-round-stake rule's arithmetic and a round's score configs as stored data."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from fractions import Fraction

import pytest

from crowdquant.money import NMR_UNIT
from crowdquant.payouts import (
    ClassicEntry,
    ClassicRule,
    PayoutRuleError,
    RoundStakeRule,
    Rules2017Rule,
    ScoringWindow,
    classic_payouts,
    configs_from_data,
    configs_to_data,
    default_rule,
    rule_from_data,
    rule_to_data,
    rule_with,
    score_configs,
)

WINDOW = ScoringWindow(
    round_number=7,
    total_score_days=20,
    returns_lag_days=2,
    data_delay_days=2,
    scoring_start=datetime(2026, 6, 25, 13, tzinfo=UTC),
    scoring_end=datetime(2026, 7, 28, 12, tzinfo=UTC),
)
CLASSIC_METRICS = {"corr", "mmc", "fnc", "bmc"}


def test_the_2026_rule_defaults_and_stored_form() -> None:
    rule = default_rule("round-stake")
    assert rule == RoundStakeRule(Decimal(5), Decimal(10), Decimal(1), Decimal(1))
    assert rule_to_data(rule) == {
        "version": "round-stake-v1",
        "corr_multiplier": "5",
        "mmc_multiplier": "10",
        "clip": "1",
        "payout_factor": "1",
        "hurdle": "0",
    }
    assert rule_from_data(rule_to_data(rule)) == rule
    recorded = {k: v for k, v in rule_to_data(rule).items() if k != "hurdle"}  # before hurdles
    assert rule_from_data(recorded) == rule
    assert rule_with("round-stake", {"mmc_multiplier": "3"}).mmc_multiplier == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"payout_factor": "1.5"}, "payout_factor: must be in \\(0, 1\\]"),
        ({"clip": "0"}, "clip: must be in \\(0, 1\\]"),
        ({"corr_multiplier": "-1"}, "corr_multiplier: must not be negative"),
        ({"stake_threshold": "5"}, "stake_threshold: unknown field for round-stake-v1"),
    ],
)
def test_the_2026_rule_refuses_values_out_of_range(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(PayoutRuleError, match=message):
        rule_with("round-stake", overrides)


def test_round_stakes_pay_5_corr_plus_10_mmc_clipped_at_the_whole_stake() -> None:
    """No stake threshold: the factor stays 1 however much is at risk."""
    entries = [
        ClassicEntry("small", 10 * NMR_UNIT, corr=0.02, mmc=0.01),  # 0.1 + 0.1 = 20 %
        ClassicEntry("lost", 4 * NMR_UNIT, corr=-0.1, mmc=-0.1),  # -1.5: clipped to -1
        ClassicEntry("whale", 10**6 * NMR_UNIT, corr=0.001, mmc=0.0),
        ClassicEntry("unscored", NMR_UNIT, corr=None, mmc=None),
    ]
    result = classic_payouts(RoundStakeRule(), entries)
    assert result.payout_factor == 1
    assert result.payouts == {
        "small": 2 * NMR_UNIT,
        "lost": -4 * NMR_UNIT,
        "whale": 5_000 * NMR_UNIT,
        "unscored": 0,
    }
    halved = classic_payouts(RoundStakeRule(payout_factor=Decimal("0.5")), entries[:1])
    assert halved.payout_factor == Fraction(1, 2)
    assert halved.payouts == {"small": NMR_UNIT}


def test_multiplier_rules_publish_their_paying_scores_first() -> None:
    configs = score_configs(RoundStakeRule(), CLASSIC_METRICS, "corr", WINDOW, "1.0")
    assert [c.name for c in configs] == ["corr", "mmc", "bmc", "fnc"]
    corr, mmc, bmc, _ = configs
    assert (corr.score_config_id, corr.version, corr.is_canon_score) == ("corr-1.0", "1.0", True)
    assert (corr.default_multiplier, mmc.default_multiplier) == (5, 10)
    assert (corr.clip_threshold, corr.payout_factor, corr.stake_threshold) == (1, 1, None)
    assert not bmc.is_payout and bmc.default_multiplier is None and bmc.clip_threshold is None
    assert {(c.round_number_start, c.round_number_end) for c in configs} == {(7, 7)}
    assert {c.scoring_end for c in configs} == {WINDOW.scoring_end}

    classic = score_configs(ClassicRule(), CLASSIC_METRICS, "corr", WINDOW, "1.0")
    assert (classic[0].default_multiplier, classic[1].default_multiplier) == (
        Decimal("0.5"),
        2,
    )
    assert classic[0].stake_threshold == 72_000 * NMR_UNIT
    assert classic[0].payout_factor is None  # it depends on the stakes at risk
    assert (classic[0].hurdle, classic[1].hurdle, classic[2].hurdle) == (
        Decimal("0.001"),
        Decimal("0.001"),
        None,  # bmc does not pay
    )
    assert corr.hurdle is None  # the 2026 rule has none by default
    hurdled = score_configs(RoundStakeRule(hurdle=Decimal("0.01")), {"corr"}, "corr", WINDOW, "1")
    assert hurdled[0].hurdle == Decimal("0.01")


def test_the_2017_rule_pays_on_logloss_without_a_multiplier() -> None:
    configs = score_configs(Rules2017Rule(), {"corr", "logloss"}, "logloss", WINDOW, "1.0")
    assert [(c.name, c.is_payout, c.is_canon_score) for c in configs] == [
        ("logloss", True, True),
        ("corr", False, False),
    ]
    assert configs[0].default_multiplier is None and configs[0].clip_threshold is None


def test_configs_read_back_exactly_from_their_stored_form() -> None:
    for rule in (RoundStakeRule(), ClassicRule(), Rules2017Rule()):
        configs = score_configs(rule, CLASSIC_METRICS | {"logloss"}, "corr", WINDOW, "1.0")
        data = configs_to_data(configs)
        assert all(
            isinstance(value, str | bool) or value is None
            for item in data
            for value in item.values()
        )
        assert configs_from_data(data) == configs
    before_hurdles = configs_to_data(score_configs(RoundStakeRule(), {"corr"}, "corr", WINDOW, "1"))
    del before_hurdles[0]["hurdle"]  # recorded before rules had hurdles
    assert configs_from_data(before_hurdles)[0].hurdle is None
    still_open = ScoringWindow(**{**WINDOW.__dict__, "scoring_end": None})
    configs = score_configs(RoundStakeRule(), {"corr"}, "corr", still_open, "1.0")
    assert configs_from_data(configs_to_data(configs)) == configs


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"default_multiplier": "five"}, "default_multiplier: must be a number"),
        ({"is_payout": "yes"}, "is_payout: must be true or false"),
        ({"scoring_start": "June"}, "scoring_start: must be an ISO time"),
        ({"name": None}, "name: missing"),
        ({"weight": "1"}, "weight: unknown field of a score config"),
        ({"total_score_days": "2.5"}, "total_score_days: must be an integer"),
        ({"hurdle": "high"}, "hurdle: must be a number"),
    ],
)
def test_stored_configs_are_checked_field_by_field(change: dict[str, object], message: str) -> None:
    data = configs_to_data(score_configs(RoundStakeRule(), {"corr"}, "corr", WINDOW, "1.0"))
    with pytest.raises(PayoutRuleError, match=message):
        configs_from_data([{**data[0], **change}])
    with pytest.raises(PayoutRuleError, match="score configs: must be a list"):
        configs_from_data({"corr": data[0]})
