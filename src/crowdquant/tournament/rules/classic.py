"""Today's rules: daily CORR, MMC, FNC and BMC; one continuous stake, frozen at each close;
stake × clipped CORR/MMC payouts (`payouts.classic_payouts`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Context, Decimal, localcontext
from typing import ClassVar

from crowdquant.db.models import PayoutMode, Rules
from crowdquant.payouts import ClassicEntry, ClassicRule, PayoutRule, classic_payouts
from crowdquant.payouts.rules import MultiplierRule
from crowdquant.tournament.rules.base import Models, PlannedPayout, Ruleset, Scores, Stakes


class Classic(Ruleset):
    rules = Rules.CLASSIC
    daily_metrics = frozenset({"corr", "mmc", "fnc", "bmc"})
    closing_metrics = frozenset()
    rank_metric = ("corr", True)
    payout_metrics = ("corr", "mmc")
    gates = ()
    upload_gates: ClassVar[Mapping[str, str]] = {}
    round_stakes = False
    publishes_2017_files = False

    def plan_payouts(
        self,
        rule: PayoutRule,
        participants: set[uuid.UUID],
        stakes: Stakes,
        scores: Scores,
        models: Models,
    ) -> tuple[list[PlannedPayout], str]:
        """Each stake at risk earns or loses its share (only stakers are paid)."""
        assert isinstance(rule, ClassicRule)
        paid, factor = staked_payouts(rule, stakes, scores)
        planned = [
            PlannedPayout(
                model_id=uuid.UUID(entry.key),
                owner_id=models[uuid.UUID(entry.key)].account_id,
                at_risk=entry.at_risk,
                reward=max(amount, 0),
                burn=max(-amount, 0),
                usd=0,
                to_wallet=models[uuid.UUID(entry.key)].payout_mode is PayoutMode.WALLET,
                inputs={"corr": entry.corr, "mmc": entry.mmc, "payout_factor": factor},
            )
            for entry, amount in paid
        ]
        return planned, factor


def staked_payouts(
    rule: MultiplierRule, stakes: Stakes, scores: Scores
) -> tuple[list[tuple[ClassicEntry, int]], str]:
    """Each stake's entry (CORR and MMC) with what it earns under `rule` (negative: the burn),
    and the round's payout factor as exact decimal text."""
    entries = [
        ClassicEntry(
            str(model_id),
            row.at_risk,
            scores.get(model_id, {}).get("corr"),
            scores.get(model_id, {}).get("mmc"),
        )
        for model_id, row in sorted(stakes.items())
    ]
    result = classic_payouts(rule, entries)
    factor = decimal_text(result.payout_factor.numerator, result.payout_factor.denominator)
    return [(entry, result.payouts[entry.key]) for entry in entries], factor


def decimal_text(numerator: int, denominator: int) -> str:
    """An exact fraction as a decimal string (to 28 significant digits if it does not
    terminate), whatever the thread's decimal context (vyper's import widens it to 78)."""
    with localcontext(Context(prec=28)):
        value = Decimal(numerator) / Decimal(denominator)
    return f"{value.normalize():f}"
