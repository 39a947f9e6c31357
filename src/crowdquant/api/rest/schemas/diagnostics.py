"""Diagnostics requests and their reports."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field, ValidationInfo, field_validator

from crowdquant.api.rest.schemas.base import Output, UtcDatetime
from crowdquant.db.models import DiagnosticsStatus
from crowdquant.tournament.diagnostics import DiagnosticsReport


class DiagnosticsOut(Output):
    """A diagnostics request and, once `done`, its report (`per_era` and `summary`);
    `request_number` counts this model's requests: repeated looks overfit validation."""

    id: uuid.UUID
    request_number: int
    status: DiagnosticsStatus
    error: str | None
    dataset_version: str
    filename: str
    created_at: UtcDatetime
    finished_at: UtcDatetime | None
    report: dict[str, Any] | None = Field(validation_alias="result")

    @field_validator("report", mode="before")
    @classmethod
    def _once_done(cls, result: Any, info: ValidationInfo) -> dict[str, Any] | None:
        if info.data.get("status") is not DiagnosticsStatus.DONE or result is None:
            return None
        return DiagnosticsReport.model_validate(result).model_dump(mode="json")
