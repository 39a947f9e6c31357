"""Leaderboards and rounds' scores."""

from __future__ import annotations

from pydantic import Field

from crowdquant.api.rest.schemas.amounts import NmrText, UsdText
from crowdquant.api.rest.schemas.base import Output
from crowdquant.api.rest.schemas.tournaments import RoundOut


class StandingOut(Output):
    """A leaderboard row: a model (with its account) or an account."""

    rank: int
    name: str
    account: str | None
    reputation: dict[str, float]
    consistency: float | None
    rounds: int
    latest_round: int | None
    latest: dict[str, float]
    stake: NmrText = Field(description="NMR staked now.")
    career_nmr: NmrText = Field(description="NMR paid minus NMR burned over its resolved rounds.")
    career_usd: UsdText = Field(description="USD paid over its resolved rounds.")


class DuplicateOut(Output):
    of: str = Field(description="The model whose submission it nearly duplicates.")
    same_account: bool = Field(
        description="Of its own account's model: it counts once (no stake at risk, no"
        " meta-model weight); else of another account's, flagged."
    )


class RoundRowOut(Output):
    rank: int | None
    model: str
    late: bool
    day: int
    scores: dict[str, float]
    percentiles: dict[str, float]
    duplicate: DuplicateOut | None = Field(
        description="Set when its submission was a near-duplicate of another in the round."
    )


class RoundScoresOut(Output):
    round: RoundOut
    models: list[RoundRowOut]


class DailyScoreOut(Output):
    round: int
    day: int
    metric: str
    value: float | None
    percentile: float | None
    late: bool
