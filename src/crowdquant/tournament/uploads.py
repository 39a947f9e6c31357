"""Raw uploads: the files participants PUT to signed URLs before submitting them.

numerapi uploads in steps: ask for a URL, PUT the bytes, then name the upload in a second
call (a submission or a diagnostics request). Every upload of a model goes to a fresh key
``uploads/<model id hex>/<nonce>/<safe name>``; the second call accepts only keys under the
caller's own model's folder, reads the bytes and deletes the upload. Uploads never named in
a second call are swept once they are older than `ABANDONED_AFTER`.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta
from pathlib import PurePosixPath
from typing import Final

from crowdquant.db.models import Model
from crowdquant.storage import FileStorage, InvalidKey, NotFound, validate_key
from crowdquant.tournament.errors import ServiceError

UPLOADS_PREFIX: Final = "uploads/"
"""Where `api/files.py` takes signed PUTs."""
DEFAULT_FILENAME: Final = "predictions.csv"
ABANDONED_AFTER: Final = timedelta(days=1)
"""Longer than any upload URL lives: an older upload was never going to be named."""
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class UploadRefused(ServiceError):  # noqa: N818
    code = "upload_refused"


class NotAnUpload(UploadRefused):
    code = "not_an_upload"
    default_message = "that file is not an upload of this model: ask for an upload URL first"


class NothingUploaded(UploadRefused):
    code = "nothing_uploaded"
    default_message = "nothing was uploaded: PUT the file to the upload URL first"


def upload_prefix(model: Model) -> str:
    """The folder a model's raw uploads go to (submissions and diagnostics alike)."""
    return f"{UPLOADS_PREFIX}{model.id.hex}/"


def safe_name(filename: str | None) -> str:
    """The last path part of `filename`, with anything unusual replaced, ≤ 128 characters."""
    raw = (filename or DEFAULT_FILENAME).replace("\\", "/")
    name = _UNSAFE.sub("_", PurePosixPath(raw).name).strip("._")
    return name[-128:] or DEFAULT_FILENAME


def new_upload_key(model: Model, filename: str | None) -> str:
    """A fresh key for one upload of `model`'s (to sign a PUT URL for)."""
    return f"{upload_prefix(model)}{uuid.uuid4().hex}/{safe_name(filename)}"


def own_upload(model: Model, key: str, how: str) -> str:
    """`key` if it is a valid key in `model`'s upload folder; else `NotAnUpload` saying
    `how` to upload (e.g. "use submission_upload_auth")."""
    key = str(key)
    try:
        validate_key(key)
    except InvalidKey:
        raise NotAnUpload(f"{key!r} is not a valid upload key: {how}") from None
    if not key.startswith(upload_prefix(model)) or key.count("/") != 3:
        raise NotAnUpload(f"{key!r} is not an upload of this model: {how}")
    return key


def read_upload(storage: FileStorage, key: str, how: str) -> bytes:
    """The uploaded bytes at `key`; `NothingUploaded` (saying `how`) if nothing is there."""
    try:
        with storage.read(key) as chunks:
            return b"".join(chunks)
    except NotFound:
        raise NothingUploaded(f"nothing was uploaded as {key!r}: {how}") from None


def sweep_abandoned_uploads(
    storage: FileStorage, now: datetime, older_than: timedelta = ABANDONED_AFTER
) -> int:
    """Delete raw uploads last written before `now - older_than`; how many were deleted."""
    cutoff = now - older_than
    stale = [found.key for found in storage.list(UPLOADS_PREFIX) if found.modified < cutoff]
    for key in stale:
        storage.delete(key)
    return len(stale)
