"""What each rule family's ruleset says, and that only the rules package tells them apart."""

from __future__ import annotations

import ast
import re
import uuid
from datetime import UTC, datetime
from decimal import Context, Decimal, localcontext
from pathlib import Path

from crowdquant.db.models import Model, PayoutMode, RoundStake, Rules
from crowdquant.payouts import ClassicRule, RoundStakeRule, Rules2017Rule, default_rule
from crowdquant.tournament.rules import (
    RULESETS,
    ruleset_for,
    ruleset_paying,
)
from crowdquant.tournament.rules.base import PlannedPayout
from crowdquant.tournament.rules.classic import Classic, decimal_text
from crowdquant.tournament.rules.round_stake import RoundStakes
from crowdquant.tournament.rules.rules2017 import Rules2017

PACKAGE = Path(__file__).parents[3] / "src" / "crowdquant"
RULES_PACKAGE = PACKAGE / "tournament" / "rules"
RULE_CLASSES = {"ClassicRule", "Rules2017Rule", "RoundStakeRule"}


def test_every_rule_family_has_its_ruleset() -> None:
    assert set(RULESETS) == set(Rules)
    for rules in Rules:
        assert ruleset_for(rules).rules is rules


def test_the_2017_rules_keep_their_stored_name() -> None:
    assert Rules.RULES2017.value == "legacy2017"
    assert Rules("legacy2017") is Rules.RULES2017


def test_classic_rules() -> None:
    classic = ruleset_for(Rules.CLASSIC)
    assert isinstance(classic, Classic)
    assert classic.daily_metrics == {"corr", "mmc", "fnc", "bmc"}
    assert classic.closing_metrics == frozenset()
    assert classic.rank_metric == ("corr", True)
    assert classic.payout_metrics == ("corr", "mmc")
    assert classic.gates == ()
    assert dict(classic.upload_gates) == {}
    assert not classic.round_stakes
    assert not classic.publishes_2017_files


def test_2017_rules() -> None:
    rules2017 = ruleset_for(Rules.RULES2017)
    assert isinstance(rules2017, Rules2017)
    assert rules2017.daily_metrics == {"corr", "logloss"}
    assert rules2017.closing_metrics == {"originality_2017"}
    assert rules2017.rank_metric == ("logloss", False)
    assert rules2017.payout_metrics == ("logloss",)
    assert rules2017.gates == ("originality_2017", "concordance")
    assert dict(rules2017.upload_gates) == {
        "consistency": "consistency",
        "concordance": "concordance",
    }
    assert rules2017.round_stakes
    assert rules2017.publishes_2017_files


def test_a_payout_rule_is_planned_by_the_ruleset_of_its_kind() -> None:
    assert isinstance(ruleset_paying(default_rule("classic")), Classic)
    assert isinstance(ruleset_paying(default_rule("legacy2017")), Rules2017)
    assert isinstance(ruleset_paying(ClassicRule()), Classic)
    assert isinstance(ruleset_paying(Rules2017Rule()), Rules2017)


def _model(mode: PayoutMode = PayoutMode.WALLET) -> Model:
    return Model(id=uuid.uuid4(), account_id=uuid.uuid4(), payout_mode=mode)


def _stake(model: Model, at_risk: int, confidence: Decimal | None = None) -> RoundStake:
    staked_at = datetime(2026, 1, 1, tzinfo=UTC)
    return RoundStake(
        model_id=model.id, at_risk=at_risk, confidence=confidence, staked_at=staked_at
    )


def test_classic_plans_only_the_stakers() -> None:
    staker, watcher = _model(PayoutMode.COMPOUND), _model()
    stakes = {staker.id: _stake(staker, 10**18)}
    scores = {staker.id: {"corr": 0.02, "mmc": 0.01}, watcher.id: {"corr": 0.03}}
    models = {model.id: model for model in (staker, watcher)}
    planned, factor = Classic().plan_payouts(
        ClassicRule(), {staker.id, watcher.id}, stakes, scores, models
    )
    assert [p.model_id for p in planned] == [staker.id]
    assert planned[0].reward > 0 and planned[0].burn == 0
    assert not planned[0].to_wallet
    assert factor == planned[0].inputs["payout_factor"]


def test_2017_plans_every_participant_and_no_factor() -> None:
    staker, watcher = _model(), _model()
    stakes = {staker.id: _stake(staker, 10**18, Decimal("0.5"))}
    gates = {"consistency": 1.0, "originality_2017": 1.0, "concordance": 1.0}
    scores = {staker.id: {"logloss": 0.69, **gates}, watcher.id: {"logloss": 0.70, **gates}}
    models = {model.id: model for model in (staker, watcher)}
    planned, factor = Rules2017().plan_payouts(
        Rules2017Rule(), {staker.id, watcher.id}, stakes, scores, models
    )
    assert factor is None
    assert {p.model_id for p in planned} == {staker.id, watcher.id}
    by_model = {p.model_id: p for p in planned}
    assert by_model[staker.id].at_risk == 10**18
    assert by_model[watcher.id].at_risk == 0
    assert by_model[staker.id].inputs["confidence"] == "0.5"


def test_2017_judges_by_the_rounds_benchmark_models_and_else_by_ln_2() -> None:
    model = _model()
    stakes = {model.id: _stake(model, 10**18, Decimal("0.5"))}
    gates = {"consistency": 1.0, "originality_2017": 1.0, "concordance": 1.0}
    models = {model.id: model}

    def planned(scores: dict[str, float]) -> PlannedPayout:
        found, _ = Rules2017().plan_payouts(
            Rules2017Rule(), {model.id}, stakes, {model.id: {**gates, **scores}}, models
        )
        return found[0]

    # better than ln 2, worse than the benchmark models that round: burned, no prize
    judged = planned({"logloss": 0.690, "benchmark_logloss": 0.685})
    assert (judged.burn, judged.reward) == (10**18, 0)
    assert judged.inputs["benchmark_logloss"] == "0.685"
    # no benchmark models' figure: judged against ln 2, and wins
    fallback = planned({"logloss": 0.690})
    assert fallback.burn == 0 and fallback.reward > 0
    assert fallback.inputs["benchmark_logloss"] == "0.69314718"


def _sources() -> list[Path]:
    return [
        path for path in sorted(PACKAGE.rglob("*.py")) if not path.is_relative_to(RULES_PACKAGE)
    ]


def _is_rules_member(node: ast.expr) -> bool:
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "Rules"
    )


def _rule_class_names(node: ast.expr) -> set[str]:
    return {name.id for name in ast.walk(node) if isinstance(name, ast.Name)} & RULE_CLASSES


def _rules_told_apart(path: Path) -> list[str]:
    """Where `path` compares a tournament's rules or tells payout rules apart by type."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare) and any(
            map(_is_rules_member, [node.left, *node.comparators])
        ):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
        if (
            isinstance(node, ast.Call)
            and ast.unparse(node.func) == "isinstance"
            and _rule_class_names(node.args[1])
        ):
            found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}")
    return found


def test_only_the_rules_package_tells_the_rule_families_apart() -> None:
    assert [place for path in _sources() for place in _rules_told_apart(path)] == []


def test_no_page_compares_a_tournament_s_rules() -> None:
    for path in sorted((PACKAGE / "web" / "templates").rglob("*.html")):
        assert not re.search(r"\.rules\s*(==|!=|is)", path.read_text()), path.name


def test_round_stake_rules() -> None:
    round_stake = ruleset_for(Rules.ROUND_STAKE)
    assert isinstance(round_stake, RoundStakes)
    assert round_stake.daily_metrics == ruleset_for(Rules.CLASSIC).daily_metrics
    assert round_stake.rank_metric == ("corr", True)
    assert round_stake.payout_metrics == ("corr", "mmc")
    assert round_stake.round_stakes
    assert not round_stake.publishes_2017_files
    assert isinstance(ruleset_paying(RoundStakeRule()), RoundStakes)


def test_round_stakes_come_back_less_their_burn_and_rewards_go_to_the_wallet() -> None:
    winner, loser, watcher = _model(PayoutMode.COMPOUND), _model(), _model()
    stakes = {winner.id: _stake(winner, 10 * 10**18), loser.id: _stake(loser, 4 * 10**18)}
    scores = {
        winner.id: {"corr": 0.02, "mmc": 0.01},
        loser.id: {"corr": -0.02, "mmc": -0.01},
        watcher.id: {"corr": 0.05},
    }
    models = {model.id: model for model in (winner, loser, watcher)}
    planned, factor = RoundStakes().plan_payouts(
        RoundStakeRule(), {winner.id, loser.id, watcher.id}, stakes, scores, models
    )
    by_model = {p.model_id: p for p in planned}
    assert set(by_model) == {winner.id, loser.id}
    assert factor == "1"
    assert (by_model[winner.id].reward, by_model[winner.id].burn) == (2 * 10**18, 0)
    assert by_model[winner.id].returned == 10 * 10**18
    assert by_model[winner.id].to_wallet  # a stake per round: nothing compounds into it
    assert (by_model[loser.id].reward, by_model[loser.id].burn) == (0, 8 * 10**17)
    assert by_model[loser.id].returned == 4 * 10**18 - 8 * 10**17


def test_the_payout_factor_text_does_not_follow_the_threads_decimal_context() -> None:
    usual = decimal_text(300, 301)
    assert usual == "0.996677740863787375415282392"
    with localcontext(Context(prec=78)):  # as vyper's import leaves it
        assert decimal_text(300, 301) == usual
    assert decimal_text(3, 4) == "0.75"
