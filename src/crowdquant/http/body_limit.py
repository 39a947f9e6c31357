"""Request bodies capped before they are read: an ASGI middleware around the whole app.

A body declared larger than its cap (``Content-Length``) is refused before a byte of it is
read; a body sent without a length (chunked) is counted as it streams and refused as soon
as it passes the cap. Either way the answer is 413 naming the limit, in the shape of the
interface the path belongs to (`Refuse`), whatever the route would have made of the
cut-off body.

Multipart forms sent to the paths that take uploads (`upload_paths`: predictions and
diagnostics) and the signed upload PUTs under ``/files/`` take the upload cap (plus a
little room for a form's other parts); every other body (GraphQL, REST JSON, the pages'
forms, a multipart form sent anywhere else) takes the request cap.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FILES_PATH = "/files/"
MULTIPART = "multipart/form-data"
FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for a multipart form's boundaries, part headers and small fields."""

Refuse = Callable[[str, bool, str], Response]
"""The 413 answer to a request for (its path, whether the upload cap applied, the message)."""


def refuse_as_json(_path: str, _upload: bool, message: str) -> Response:
    """``{"detail": <message>}``, the file endpoints' shape."""
    return JSONResponse({"detail": message}, status_code=413)


class _BodyTooLargeError(Exception):
    """Raised into the app by `receive` once the body passes its cap."""


class BodyLimit:
    """Caps each request's body at `max_body_bytes`, uploads at `max_upload_bytes`.

    `upload_paths` matches (whole) the paths that take multipart uploads.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_upload_bytes: int,
        upload_paths: re.Pattern[str],
        refuse: Refuse = refuse_as_json,
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes
        self.upload_paths = upload_paths
        self.refuse = refuse

    def limit_for(self, scope: Scope, headers: Headers) -> tuple[int, bool]:
        """The cap on this request's body in bytes, and whether it is the upload cap."""
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type == MULTIPART and self.upload_paths.fullmatch(scope["path"]):
            return self.max_upload_bytes + FORM_OVERHEAD_BYTES, True
        if scope["method"] == "PUT" and scope["path"].startswith(FILES_PATH):
            return self.max_upload_bytes, True
        return self.max_body_bytes, False

    def too_large(self, scope: Scope, limit: int, upload: bool) -> Response:
        what = "upload" if upload else "request body"
        message = f"the {what} is over the limit of {limit:,} bytes"
        answer = self.refuse(scope["path"], upload, message)
        answer.headers["connection"] = "close"
        return answer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit, upload = self.limit_for(scope, headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await self.too_large(scope, limit, upload)(scope, receive, send)
            return
        received = 0
        exceeded = started = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _BodyTooLargeError()
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if exceeded:  # whatever the app answers to a cut-off body, the answer is 413
                if not started:
                    started = True
                    await self.too_large(scope, limit, upload)(scope, receive, send)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLargeError:
            if not started:
                await self.too_large(scope, limit, upload)(scope, receive, send)
