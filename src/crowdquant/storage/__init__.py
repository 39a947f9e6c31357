"""File storage behind one small interface; the backend is chosen by settings.

``storage_from_settings(settings)`` gives a local directory (the default,
``CROWDQUANT_HOME/files``) or an S3-compatible bucket (``CROWDQUANT_STORAGE_BACKEND=s3``).
Domain code sees only ``FileStorage``.
"""

from __future__ import annotations

from crowdquant.settings import Settings
from crowdquant.storage.interface import (
    CHUNK_SIZE,
    ByteStream,
    Content,
    FileStorage,
    InvalidKey,
    InvalidRange,
    NotFound,
    StorageError,
    StoredFile,
    TooLarge,
    validate_key,
)
from crowdquant.storage.local import LocalStorage

__all__ = [
    "CHUNK_SIZE",
    "ByteStream",
    "Content",
    "FileStorage",
    "InvalidKey",
    "InvalidRange",
    "LocalStorage",
    "NotFound",
    "StorageError",
    "StoredFile",
    "TooLarge",
    "storage_from_settings",
    "validate_key",
]

KEPT_DEPTH = 2
"""Folders the local backend keeps once emptied: the top two levels, reused by every upload
(``uploads/<model>/``, ``submissions/<round>/``)."""


def storage_from_settings(settings: Settings) -> FileStorage:
    """The storage backend ``settings`` chooses; creates nothing until the first write."""
    if settings.storage_backend == "s3":
        from crowdquant.storage.s3 import S3Storage, make_s3_client

        if settings.s3_bucket is None:  # Settings refuses this; guard for type checkers
            raise ValueError("CROWDQUANT_S3_BUCKET must be set for the s3 storage backend")
        secret = settings.s3_secret_key
        client = make_s3_client(
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key=settings.s3_access_key,
            secret_key=None if secret is None else secret.get_secret_value(),
        )
        return S3Storage(client, settings.s3_bucket, prefix=settings.s3_prefix)
    return LocalStorage(settings.storage_dir, fsync=settings.storage_fsync, keep_depth=KEPT_DEPTH)
