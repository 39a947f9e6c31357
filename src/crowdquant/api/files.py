"""Signed file URLs served by the app: dataset downloads (GET/HEAD) and upload PUTs.

``/files/<storage key>?expires=...&signature=...`` (see `http/signing.py`). The URL is the
whole authorization; numerapi sends no header on it (protocol §2.5).

* GET serves the stored file (streamed, past `WHOLE_BYTES`) with an exact ``Content-Length``
  and never compresses it.
  A single ``Range: bytes=a-b`` / ``a-`` / ``-n`` answers 206 with ``Content-Range`` (numerapi
  resumes downloads this way; fsspec reads Parquet blocks); a range that is malformed, asks
  for several parts, or starts past the end answers 416. HEAD answers GET's headers and is
  authorized by the GET signature.
* A closed-live version's ``features.json`` is served with ``"live": "closed"`` added
  (`tournament.live_mode`); every other file as stored.
* PUT streams the body into a spooled temporary file, refusing it (413) past the signed
  ``max_bytes``, then stores the raw bytes at the signed key. Only keys under ``uploads/``
  take PUTs; `create_submission` later reads them (see `api/graphql/submissions.py`).

Refusals answer JSON ``{"detail": <message>}``: 403 for a forged or expired link or a key
the visibility policy never serves (the operator's files, the live files of a closed-live
tournament, even under a link signed before it closed), 404 for a missing file.
"""

from __future__ import annotations

import re
import tempfile
from typing import BinaryIO

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from crowdquant.http.services import ServicesDep
from crowdquant.http.signing import SignedGrant, SignedUrlError
from crowdquant.storage import CHUNK_SIZE, FileStorage, NotFound, StorageError, TooLarge
from crowdquant.tournament.live_mode import (
    closed_live_versions,
    features_key_closed,
    served_features_json,
)
from crowdquant.tournament.visibility import live_key_closed, servable_key

UPLOADS_PREFIX = "uploads/"
SPOOL_BYTES = 8 * 1024 * 1024
WHOLE_BYTES = CHUNK_SIZE
"""A range up to this size is answered in one piece; a longer one is streamed, a chunk at a
time, each read on a worker thread of its own."""
_RANGE = re.compile(r"\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*")

router = APIRouter()


def _refusal(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": message}, status_code=status, headers=headers)


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive byte range `header` asks of a `size`-byte file; None if unsatisfiable."""
    match = _RANGE.fullmatch(header)
    if match is None:
        return None
    first, last = match[1], match[2]
    if not first:
        if not last or int(last) == 0 or size == 0:
            return None
        return max(size - int(last), 0), size - 1
    start = int(first)
    end = size - 1 if not last else min(int(last), size - 1)
    if start >= size or (last and int(last) < start):
        return None
    return start, end


def _verify(services: ServicesDep, method: str, request: Request) -> SignedGrant | JSONResponse:
    try:
        return services.signer.verify_query(method, request.url.path, request.url.query)
    except SignedUrlError as error:
        return _refusal(403, str(error))


@router.api_route("/files/{key:path}", methods=["GET", "HEAD"])
def download(key: str, request: Request, services: ServicesDep) -> Response:
    grant = _verify(services, "GET", request)
    if isinstance(grant, JSONResponse):
        return grant
    if not servable_key(key):  # even a valid signature never opens the operator's files
        return _refusal(403, "this file is not served")
    with services.sessions() as session:
        closed = closed_live_versions(session)
    if live_key_closed(key, closed):
        return _refusal(
            403, "this live file is not served: its tournament runs closed-live (no download)"
        )
    storage = services.storage
    served: bytes | None = None  # a closed-live version's features.json, as served
    try:
        if features_key_closed(key, closed):
            served = served_features_json(storage, key)
            size = len(served)
        else:
            size = storage.stat(key).size
    except NotFound:
        return _refusal(404, "the file is gone")
    except StorageError as error:
        return _refusal(404, str(error))
    headers = {
        "Accept-Ranges": "bytes",
        "Content-Type": "application/octet-stream",
        "Cache-Control": "private, no-transform",
    }
    start, end, status = 0, size - 1, 200
    wanted = request.headers.get("range")
    if wanted is not None:
        found = parse_range(wanted, size)
        if found is None:
            return _refusal(
                416,
                f"cannot serve {wanted!r} of a {size}-byte file",
                {"Content-Range": f"bytes */{size}"},
            )
        start, end, status = found[0], found[1], 206
        headers["Content-Range"] = f"bytes {start}-{end}/{size}"
    length = end - start + 1
    headers["Content-Length"] = str(length)
    if request.method == "HEAD" or length <= 0:
        return Response(status_code=status, headers=headers)
    if served is not None:
        return Response(served[start : end + 1], status_code=status, headers=headers)
    try:
        chunks = storage.read(key, start, end + 1)
    except NotFound:
        return _refusal(404, "the file is gone")
    if length <= WHOLE_BYTES:  # a live file, say: read here, in this request's thread
        with chunks:
            return Response(b"".join(chunks), status_code=status, headers=headers)
    return StreamingResponse(chunks, status_code=status, headers=headers)


def _store(storage: FileStorage, key: str, body: BinaryIO, max_bytes: int | None) -> None:
    body.seek(0)
    storage.write(key, body, max_bytes=max_bytes)


@router.put("/files/{key:path}")
async def upload(key: str, request: Request, services: ServicesDep) -> Response:
    grant = _verify(services, "PUT", request)
    if isinstance(grant, JSONResponse):
        return grant
    if not key.startswith(UPLOADS_PREFIX):
        return _refusal(403, "this link does not take uploads")
    limit = grant.max_bytes
    too_large = f"the upload is over the limit of {limit:,} bytes"
    declared = request.headers.get("content-length", "")
    if limit is not None and declared.isdigit() and int(declared) > limit:
        return _refusal(413, too_large)
    with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if limit is not None and size > limit:
                return _refusal(413, too_large)
            spool.write(chunk)
        try:
            await run_in_threadpool(_store, services.storage, key, spool, limit)  # type: ignore[arg-type]
        except TooLarge:
            return _refusal(413, too_large)
    return JSONResponse({"stored": key, "bytes": size})
