"""What a rule family decides, as one strategy object (`Ruleset`)."""

from __future__ import annotations

import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from crowdquant.db.models import Model, RoundStake, Rules
from crowdquant.payouts import PayoutRule

Stakes = Mapping[uuid.UUID, RoundStake]
Scores = Mapping[uuid.UUID, dict[str, float]]
Models = Mapping[uuid.UUID, Model]


@dataclass(frozen=True)
class PlannedPayout:
    model_id: uuid.UUID
    owner_id: uuid.UUID
    at_risk: int
    reward: int
    """NMR the rule awards, before any pro rata scaling (prize NMR under 2017 rules)."""
    burn: int
    usd: int
    """USD cents the rule awards, before scaling."""
    returned: int = 0
    """2017 rules: the round's stake going back to the wallet."""
    to_wallet: bool = True
    """Where the reward goes: the owner's wallet, or the model's stake (compounding)."""
    inputs: dict[str, Any] = field(default_factory=dict)


class Ruleset(ABC):
    """How a tournament's rounds are scored, staked on, paid out and shown."""

    rules: ClassVar[Rules]
    daily_metrics: ClassVar[frozenset[str]]
    """The scores taken against each day's targets (those whose inputs exist)."""
    closing_metrics: ClassVar[frozenset[str]]
    """The day-0 scores beyond the similarity figures every round gets."""
    rank_metric: ClassVar[tuple[str, bool]]
    """The metric the leaderboard ranks by, and whether higher is better."""
    payout_metrics: ClassVar[tuple[str, ...]]
    """The final scores a payout reads (the per-round chart of a profile)."""
    gates: ClassVar[tuple[str, ...]]
    """The pass (1) or fail (0) scores an entry must clear to be paid."""
    upload_gates: ClassVar[Mapping[str, str]]
    """Gates measured on the counting upload: the check's metric to the score it stands for."""
    round_stakes: ClassVar[bool]
    """A stake is placed on one round, with a confidence (else it is one continuous stake,
    frozen at each close and released after the rounds it is at risk in)."""
    publishes_2017_files: ClassVar[bool]
    """Rounds publish the 2017 CSV files (ids over every row, a test set); uploads to them
    are the 2017 `id, probability` file, validated and measured against those rows."""

    @abstractmethod
    def plan_payouts(
        self,
        rule: PayoutRule,
        participants: set[uuid.UUID],
        stakes: Stakes,
        scores: Scores,
        models: Models,
    ) -> tuple[list[PlannedPayout], str | None]:
        """What `rule` pays each entry, and the payout factor it applied (if any)."""
