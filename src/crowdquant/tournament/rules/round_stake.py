"""Numerai's 2026 rules: the classic daily scores, a stake placed on each round, and
round_stake × clip(payout_factor × (5·CORR + 10·MMC), ±1) (`payouts.RoundStakeRule`). The
stake goes back to the wallet at resolution, less any burn; rewards go to the wallet."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import ClassVar

from crowdquant.db.models import Rules
from crowdquant.payouts import PayoutRule, RoundStakeRule
from crowdquant.tournament.rules.base import Models, PlannedPayout, Ruleset, Scores, Stakes
from crowdquant.tournament.rules.classic import Classic, staked_payouts


class RoundStakes(Ruleset):
    rules = Rules.ROUND_STAKE
    daily_metrics = Classic.daily_metrics
    closing_metrics = Classic.closing_metrics
    rank_metric = Classic.rank_metric
    payout_metrics = Classic.payout_metrics
    gates = ()
    upload_gates: ClassVar[Mapping[str, str]] = {}
    round_stakes = True
    publishes_2017_files = False

    def plan_payouts(
        self,
        rule: PayoutRule,
        participants: set[uuid.UUID],
        stakes: Stakes,
        scores: Scores,
        models: Models,
    ) -> tuple[list[PlannedPayout], str]:
        """Each round's stake earns or loses its share and is returned, less the burn."""
        assert isinstance(rule, RoundStakeRule)
        paid, factor = staked_payouts(rule, stakes, scores)
        planned = []
        for entry, amount in paid:
            model_id = uuid.UUID(entry.key)
            burn = max(-amount, 0)
            planned.append(
                PlannedPayout(
                    model_id=model_id,
                    owner_id=models[model_id].account_id,
                    at_risk=entry.at_risk,
                    reward=max(amount, 0),
                    burn=burn,
                    usd=0,
                    returned=entry.at_risk - burn,
                    inputs={"corr": entry.corr, "mmc": entry.mmc, "payout_factor": factor},
                )
            )
        return planned, factor
