"""The caller's models."""

from __future__ import annotations

import uuid

from pydantic import AliasPath, Field

from crowdquant.api.rest.schemas.base import MAX_INT32, Input, Output, UtcDatetime


class ModelOut(Output):
    id: uuid.UUID
    name: str
    tournament: int = Field(validation_alias=AliasPath("tournament", "number"))
    created_at: UtcDatetime


class ModelIn(Input):
    tournament: int = Field(ge=1, le=MAX_INT32, description="The tournament to enter.")
    name: str = Field(
        max_length=64, description="3 to 32 characters a-z, 0-9 or _, unique in the tournament."
    )
