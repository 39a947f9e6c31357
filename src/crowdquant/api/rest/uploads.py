"""Reading a predictions file sent as ``multipart/form-data`` (its part named ``file``).

The body is read with a limit (the app's upload limit plus room for the form's headers):
past it the upload is refused with the submissions service's own `UploadTooLarge`, before
any more is read. The parts are split on the boundary (RFC 7578 / RFC 2046), so the file's
bytes arrive exactly as sent, binary Parquet included. Other parts are ignored.

The filename is reduced to letters, digits, ``.``, ``_`` and ``-`` (as the GraphQL upload
path does for its storage keys): the service keeps it, and control characters have no
place in a filename shown back on pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email.message import Message
from email.utils import collapse_rfc2231_value
from pathlib import PurePosixPath
from typing import Annotated, Any

from fastapi import Depends, Request

from crowdquant.api.deps import ServicesDep
from crowdquant.api.rest.errors import RestError
from crowdquant.tournament.submissions import DEFAULT_FILENAME, UploadTooLarge

FILE_FIELD = "file"
FORM_OVERHEAD_BYTES = 64 * 1024
MAX_FILENAME = 128
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_BOUNDARY = re.compile(r"[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]")

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


def _params(header: str, value: str) -> Message:
    message = Message()
    message[header] = value
    return message


def _param(message: Message, name: str, header: str) -> str | None:
    value = message.get_param(name, header=header)
    if value is None or isinstance(value, str):
        return value
    return collapse_rfc2231_value(value)


def boundary_of(content_type: str) -> bytes:
    """The boundary of a ``multipart/form-data`` Content-Type; 415 for any other type."""
    message = _params("content-type", content_type)
    if message.get_content_type() != "multipart/form-data":
        raise RestError(
            415,
            "unsupported_media_type",
            f"send the predictions as multipart/form-data with a part named {FILE_FIELD!r}",
        )
    boundary = _param(message, "boundary", "content-type")
    if boundary is None or not _BOUNDARY.fullmatch(boundary):
        raise _malformed("the multipart Content-Type has no valid boundary")
    return boundary.encode("ascii")


def _split_part(section: bytes) -> tuple[Message, bytes]:
    """The headers and content of one part: `section` starts after its boundary line."""
    line_end = section.find(b"\r\n")
    if line_end < 0 or section[:line_end].strip(b" \t"):
        raise _malformed("the multipart body is malformed")
    section = section[line_end + 2 :]
    if section.startswith(b"\r\n"):
        return Message(), section[2:]
    head_end = section.find(b"\r\n\r\n")
    if head_end < 0:
        raise _malformed("a part of the multipart body has no end to its headers")
    headers = Message()
    for line in section[:head_end].decode("utf-8", "replace").split("\r\n"):
        name, colon, value = line.partition(":")
        if not colon:
            raise _malformed("a part of the multipart body has a malformed header")
        headers[name.strip()] = value.strip()
    return headers, section[head_end + 4 :]


def parse_form(body: bytes, boundary: bytes) -> dict[str, list[tuple[str | None, bytes]]]:
    """Each part's name → its (filename, content) pairs, in order."""
    sections = (b"\r\n" + body).split(b"\r\n--" + boundary)
    form: dict[str, list[tuple[str | None, bytes]]] = {}
    for section in sections[1:]:
        if section.startswith(b"--"):  # the closing boundary; an epilogue may follow
            return form
        headers, content = _split_part(section)
        disposition = headers.get("content-disposition")
        if disposition is None:
            raise _malformed("a part of the multipart body has no Content-Disposition")
        described = _params("content-disposition", str(disposition))
        name = _param(described, "name", "content-disposition")
        if name is None:
            raise _malformed("a part of the multipart body has no name")
        filename = _param(described, "filename", "content-disposition")
        form.setdefault(name, []).append((filename, content))
    raise _malformed("the multipart body is incomplete: it has no closing boundary")


def safe_filename(filename: str | None) -> str:
    name = PurePosixPath((filename or "").replace("\\", "/")).name
    name = _UNSAFE.sub("_", name).strip("._")
    return name[-MAX_FILENAME:] or DEFAULT_FILENAME


async def read_upload(request: Request, services: ServicesDep) -> UploadedFile:
    """The uploaded predictions file of this request."""
    boundary = boundary_of(request.headers.get("content-type", ""))
    limit = services.max_upload_bytes + FORM_OVERHEAD_BYTES
    too_large = UploadTooLarge(
        f"the upload is over the limit of {services.max_upload_bytes:,} bytes"
    )
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise too_large
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large
    files = parse_form(bytes(body), boundary).get(FILE_FIELD, [])
    if len(files) != 1:
        raise _malformed(f"send exactly one part named {FILE_FIELD!r}, not {len(files)}")
    filename, content = files[0]
    return UploadedFile(safe_filename(filename), content)


UploadDep = Annotated[UploadedFile, Depends(read_upload)]
