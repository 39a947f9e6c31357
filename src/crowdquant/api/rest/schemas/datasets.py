"""Dataset versions, their files and download links."""

from __future__ import annotations

from pydantic import Field

from crowdquant.api.rest.schemas.base import DownloadOut, Output, UtcDatetime


class DatasetFileOut(Output):
    filename: str
    size: int
    sha256: str
    published_at: UtcDatetime


class DatasetVersionOut(Output):
    version: str
    files: list[DatasetFileOut]
    alias_of: str | None = Field(
        None, description="The published version this name serves (None: a version itself)."
    )
    aliases: list[str] = Field(
        default_factory=list, description="Other names this version's files are served under."
    )


class DatasetDownloadOut(DownloadOut):
    version: str
    filename: str
    size: int
    sha256: str
