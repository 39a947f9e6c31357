"""What every answer and input shares: UTC times, the base models, and `Overlay`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


UtcDatetime = Annotated[datetime, AfterValidator(_utc)]

MAX_INT32 = 2**31 - 1  # tournament and round numbers are INTEGER columns


class Output(BaseModel):
    """An answer, read from an object's attributes: ``Model.model_validate(obj)``."""

    model_config = ConfigDict(frozen=True, from_attributes=True)


class Input(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Overlay:
    """The attributes of `source`, with `values` added or replaced: what an answer is read
    from when part of it is not the object's own (whether a round is open now)."""

    def __init__(self, source: object, **values: object) -> None:
        self._source = source
        self._values = values

    def __getattr__(self, name: str) -> Any:
        if name in self._values:
            return self._values[name]
        return getattr(self._source, name)


class DownloadOut(Output):
    url: str = Field(description="An absolute signed URL: GET it without any header.")
    expires_at: UtcDatetime
