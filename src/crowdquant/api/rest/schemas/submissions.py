"""Submissions and their download links."""

from __future__ import annotations

import uuid

from pydantic import AliasPath, Field

from crowdquant.api.rest.schemas.base import DownloadOut, Output, UtcDatetime
from crowdquant.db.models import SubmissionStatus


# read from a submission overlaid with `selected` and its `checks`
class SubmissionOut(Output):
    id: uuid.UUID
    model_id: uuid.UUID
    tournament: int = Field(validation_alias=AliasPath("round", "tournament", "number"))
    round: int = Field(validation_alias=AliasPath("round", "number"))
    filename: str
    status: SubmissionStatus
    error: str | None = Field(description="Why the file is invalid, when it is.")
    late: bool = Field(description="Uploaded after the round closed: scored, never staked.")
    selected: bool = Field(description="The upload that counts for the model in its round.")
    n_rows: int | None
    created_at: UtcDatetime
    validated_at: UtcDatetime | None
    checks: dict[str, float | None] = Field(
        default_factory=dict,
        description="A 2017 upload's figures, computed when it was uploaded:"
        " validation_logloss, consistency (share of validation eras beating ln 2),"
        " originality and concordance (1 pass, 0 fail). Empty for other uploads.",
    )


class SubmissionDownloadOut(DownloadOut):
    submission_id: uuid.UUID
    filename: str
