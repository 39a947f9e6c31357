"""Dataset versions, their files and download links."""

from __future__ import annotations

from crowdquant.api.rest.schemas.base import DownloadOut, Output, UtcDatetime


class DatasetFileOut(Output):
    filename: str
    size: int
    sha256: str
    published_at: UtcDatetime


class DatasetVersionOut(Output):
    version: str
    files: list[DatasetFileOut]


class DatasetDownloadOut(DownloadOut):
    version: str
    filename: str
    size: int
    sha256: str
