"""Tournaments and their rounds."""

from __future__ import annotations

from decimal import Decimal

from pydantic import AliasPath, Field, field_serializer

from crowdquant.api.rest.schemas.amounts import NmrText
from crowdquant.api.rest.schemas.base import Output, UtcDatetime
from crowdquant.db.models import Cadence, RoundStatus, Rules
from crowdquant.payouts.score_configs import DECIMAL_FIELDS


class TournamentOut(Output):
    number: int
    name: str
    rules: Rules
    cadence: Cadence
    dataset_version: str
    created_at: UtcDatetime


class ScoreConfigOut(Output):
    """One score a round is measured by, and what it pays (numerapi's `roundScoreConfigs`)."""

    score_config_id: str
    name: str
    version: str = Field(description="The version of the score's definition.")
    display_name: str
    round_number_start: int
    round_number_end: int
    universe: str
    is_canon_score: bool
    is_payout: bool
    total_score_days: int = Field(description="Trading days the target spans.")
    returns_lag_days: int = Field(description="Trading days before the target's first return.")
    data_delay_days: int = Field(description="Days from the target's last close to its score.")
    scoring_start: UtcDatetime
    scoring_end: UtcDatetime | None
    default_multiplier: Decimal | None
    min_multiplier: Decimal | None
    max_multiplier: Decimal | None
    clip_threshold: Decimal | None
    stake_threshold: NmrText | None
    payout_factor: Decimal | None = Field(
        description="The rule's fixed payout factor; null where it depends on the stakes."
    )
    hurdle: Decimal | None = Field(
        description="What the sum of the paying scores times their multipliers must beat to"
        " earn; null where the rule has none."
    )

    @field_serializer(*DECIMAL_FIELDS)
    def _decimal_text(self, value: Decimal | None) -> str | None:
        return None if value is None else f"{value:f}"


# read from a round overlaid with `is_open` and `score_configs`
class RoundOut(Output):
    tournament: int = Field(validation_alias=AliasPath("tournament", "number"))
    number: int
    status: RoundStatus
    open_time: UtcDatetime
    close_staking_time: UtcDatetime
    close_time: UtcDatetime
    resolve_time: UtcDatetime | None
    dataset_version: str
    is_open: bool = Field(description="Whether on-time submissions and stakes are taken now.")
    score_configs: list[ScoreConfigOut] = Field(
        description="The round's scores and payout rule, as recorded when it opened."
    )
