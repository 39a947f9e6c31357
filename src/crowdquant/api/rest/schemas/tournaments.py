"""Tournaments and their rounds."""

from __future__ import annotations

from pydantic import AliasPath, Field

from crowdquant.api.rest.schemas.base import Output, UtcDatetime
from crowdquant.db.models import Cadence, RoundStatus, Rules


class TournamentOut(Output):
    number: int
    name: str
    rules: Rules
    cadence: Cadence
    dataset_version: str
    created_at: UtcDatetime


# read from a round overlaid with `is_open`
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
