"""The seeds' 2017 rules: daily CORR and logloss, the day-0 `originality_2017`; a stake per
round with a confidence; the logloss benchmark, auction and rank prizes
(`payouts.rules2017_payouts`); rounds with the 2017 CSV files.

The benchmark is the round's benchmark models: their live logloss, scored each day beside
the submissions' (`benchmark_logloss`). A round without it (a dataset built without
benchmark models) is judged against the rule's fixed ln 2."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import ClassVar

from crowdquant.db.models import Rules
from crowdquant.payouts import (
    PayoutRule,
    Rules2017Entry,
    Rules2017Rule,
    benchmark_of,
    passes_gates,
    rules2017_payouts,
)
from crowdquant.tournament.rules.base import Models, PlannedPayout, Ruleset, Scores, Stakes


class Rules2017(Ruleset):
    rules = Rules.RULES2017
    daily_metrics = frozenset({"corr", "logloss"})
    closing_metrics = frozenset({"originality_2017"})
    rank_metric = ("logloss", False)
    payout_metrics = ("logloss",)
    gates = ("originality_2017", "concordance")
    upload_gates: ClassVar[Mapping[str, str]] = {
        "consistency": "consistency",
        "concordance": "concordance",
    }
    """The day-0 `originality_2017` judges originality: it compares the on-time uploads at
    the close, where the upload's own originality saw only those that came before it."""
    round_stakes = True
    publishes_2017_files = True

    def plan_payouts(
        self,
        rule: PayoutRule,
        participants: set[uuid.UUID],
        stakes: Stakes,
        scores: Scores,
        models: Models,
    ) -> tuple[list[PlannedPayout], None]:
        """Every participant's outcome (stakers and not): burns, returns, awards, prizes."""
        assert isinstance(rule, Rules2017Rule)
        order = {
            model_id: k
            for k, model_id in enumerate(
                sorted(stakes, key=lambda m: (stakes[m].staked_at, str(m)))
            )
        }
        entries = []
        for model_id in sorted(participants | set(stakes), key=str):
            measured = scores.get(model_id, {})
            row = stakes.get(model_id)
            entries.append(
                Rules2017Entry(
                    key=str(model_id),
                    live_logloss=measured.get("logloss"),
                    eligible=passes_gates(
                        rule,
                        consistency=measured.get("consistency"),
                        original=_gate(measured.get("originality_2017")),
                        concordant=_gate(measured.get("concordance")),
                    ),
                    stake=0 if row is None else row.at_risk,
                    confidence=None if row is None else row.confidence,
                    order=order.get(model_id, len(order)),
                    benchmark_logloss=measured.get("benchmark_logloss"),
                )
            )
        planned = []
        for entry, outcome in zip(entries, rules2017_payouts(rule, entries), strict=True):
            model_id = uuid.UUID(entry.key)
            planned.append(
                PlannedPayout(
                    model_id=model_id,
                    owner_id=models[model_id].account_id,
                    at_risk=entry.stake,
                    reward=outcome.prize_nmr,
                    burn=outcome.burn,
                    usd=outcome.award_usd + outcome.prize_usd,
                    returned=outcome.returned,
                    inputs={
                        "live_logloss": entry.live_logloss,
                        "benchmark_logloss": str(benchmark_of(rule, entry.benchmark_logloss)),
                        "eligible": entry.eligible,
                        "confidence": None if entry.confidence is None else str(entry.confidence),
                        "rank": outcome.rank,
                        "auction_award_usd": outcome.auction_award_usd,
                        "prize_usd": outcome.prize_usd,
                    },
                )
            )
        return planned, None


def _gate(value: float | None) -> bool | None:
    return None if value is None else value >= 0.5
