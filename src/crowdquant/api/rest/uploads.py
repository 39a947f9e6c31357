"""Reading a predictions file sent as ``multipart/form-data`` (its part named ``file``).

The form is parsed by Starlette with python-multipart (a file part spools to a temporary
file). A declared body past the app's upload limit (plus room for the form's headers) is
refused before anything is read, and a file past the limit after parsing, both with the
submissions service's own `UploadTooLarge`. The filename is reduced as every upload's is
(`tournament.uploads.safe_name`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException

from crowdquant.api.rest.errors import RestError
from crowdquant.http.body_limit import FORM_OVERHEAD_BYTES, MULTIPART
from crowdquant.http.services import ServicesDep
from crowdquant.tournament.submissions import UploadTooLarge
from crowdquant.tournament.uploads import safe_name

FILE_FIELD = "file"

REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": [FILE_FIELD],
                "properties": {
                    FILE_FIELD: {
                        "type": "string",
                        "format": "binary",
                        "description": "Predictions: CSV or Parquet with `id` and `prediction`.",
                    }
                },
            }
        }
    },
}
"""The OpenAPI request body of an upload (FastAPI cannot infer it: the form is read here)."""


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content: bytes


def _malformed(message: str) -> RestError:
    return RestError(422, "invalid_upload", message)


async def read_upload(request: Request, services: ServicesDep) -> UploadedFile:
    """The uploaded predictions file of this request."""
    content_type = request.headers.get("content-type", "")
    if content_type.split(";", 1)[0].strip().lower() != MULTIPART:
        raise RestError(
            415,
            "unsupported_media_type",
            f"send the predictions as {MULTIPART} with a part named {FILE_FIELD!r}",
        )
    limit = services.max_upload_bytes
    too_large = UploadTooLarge(f"the upload is over the limit of {limit:,} bytes")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit + FORM_OVERHEAD_BYTES:
        raise too_large
    try:
        form = await request.form(max_files=1, max_fields=16)
    except MultiPartException as exc:
        raise _malformed(f"the multipart body is malformed: {exc.message}") from None
    except HTTPException as exc:  # Starlette's answer to a body python-multipart rejects
        raise _malformed(f"the multipart body is malformed: {exc.detail}") from None
    try:
        files = [part for part in form.getlist(FILE_FIELD) if isinstance(part, UploadFile)]
        if len(files) != 1:
            raise _malformed(f"send exactly one file part named {FILE_FIELD!r}, not {len(files)}")
        (upload,) = files
        if upload.size is not None and upload.size > limit:
            raise too_large
        content = await upload.read(limit + 1)
        if len(content) > limit:
            raise too_large
        return UploadedFile(safe_name(upload.filename), content)
    finally:
        await form.close()


UploadDep = Annotated[UploadedFile, Depends(read_upload)]
