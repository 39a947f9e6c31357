"""What a simulation leaves behind: plain tables, read from the books once the rounds resolved.

The runner fills a `SimulationRecord` from the database through the services; the report
reads nothing else. Amounts are in NMR (floats: the report's unit; the ledger stays exact).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pandas as pd

BotStakes = Literal["compound", "fixed"]
"""How the bots staked: letting payouts compound, or taking them and keeping a fixed stake."""

MODEL_COLUMNS = ("model_id", "model", "account", "archetype")
"""`models`: one row per model; `archetype` names the bot that runs it (e.g. "spammer")."""

RESULT_COLUMNS = (
    "round",
    "model_id",
    "submitted",  # the model uploaded predictions for the round (on time or late)
    "late",  # its only submission arrived after the close
    "at_risk",  # NMR frozen at the close (0 when it had no valid on-time submission)
    "payout",  # NMR paid (> 0) or burned (< 0) at resolution
    "payout_usd",
    "corr",  # final-day scores (NaN when not scored)
    "mmc",
)
"""`results`: one row per (resolved round, model)."""

ROUND_COLUMNS = (
    "round",
    "resolved_at",
    "meta_corr",  # the stake-weighted meta model's final-day CORR
    "meta_members",  # its blend's effective number of members, (Σw)² ÷ Σw² of its weights
    "meta_top_weight",  # its largest member's share of the blend's weight
    "paid",  # NMR paid to stakers in the round
    "burned",  # NMR burned in the round
)
"""`rounds`: one row per resolved round, in order."""

HOLDING_COLUMNS = ("round", "account", "archetype", "nmr")
"""`holdings`: each account's NMR (wallet + stakes + pending releases) after each
resolution."""

FUND_COLUMNS = ("date", "equity")
"""`fund`: the meta model's long/short fund, its equity (1.0 at the start) by market day."""


@dataclass(frozen=True)
class SimulationRecord:
    rule: str  # the payout rule version the rounds ran under, e.g. "classic-v2"
    cadence: str  # "daily" or "weekly"
    rounds_run: int  # rounds opened (some may not have resolved when the run stopped)
    models: pd.DataFrame
    results: pd.DataFrame
    rounds: pd.DataFrame
    holdings: pd.DataFrame
    fund: pd.DataFrame
    seconds: float  # wall-clock time of the run
    weighting: str = "stake"  # the meta model's weighting (tournament setting meta_model.weights)
    bot_stakes: BotStakes = "compound"  # "fixed": the bots took their payouts (`Bot.fixed_stake`)

    def archetype_of(self) -> dict[str, str]:
        """model_id → archetype."""
        return dict(zip(self.models["model_id"], self.models["archetype"], strict=True))
