"""Request bodies capped before they are read: an ASGI middleware around the whole app.

A body declared larger than its cap (``Content-Length``) is refused before a byte of it is
read; a body sent without a length (chunked) is counted as it streams and refused as soon
as it passes the cap. Either way the answer is 413 ``{"detail": <message>}`` naming the
limit, whatever the route would have made of the cut-off body.

Multipart forms (predictions and diagnostics uploads) and the signed upload PUTs under
``/files/`` take the upload cap (plus a little room for a form's other parts); every other
body (GraphQL, REST JSON, the pages' forms) takes the request cap.
"""

from __future__ import annotations

import json

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

FILES_PATH = "/files/"
MULTIPART = "multipart/form-data"
FORM_OVERHEAD_BYTES = 64 * 1024
"""Room for a multipart form's boundaries, part headers and small fields."""


class _BodyTooLargeError(Exception):
    """Raised into the app by `receive` once the body passes its cap."""


class BodyLimit:
    """Caps each request's body at `max_body_bytes`, uploads at `max_upload_bytes`."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_upload_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = max_upload_bytes

    def limit_for(self, scope: Scope, headers: Headers) -> int:
        """The cap on this request's body, in bytes."""
        content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type == MULTIPART:
            return self.max_upload_bytes + FORM_OVERHEAD_BYTES
        if scope["method"] == "PUT" and scope["path"].startswith(FILES_PATH):
            return self.max_upload_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.limit_for(scope, headers)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _refuse(send, limit)
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
                    await _refuse(send, limit)
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLargeError:
            if not started:
                await _refuse(send, limit)


async def _refuse(send: Send, limit: int) -> None:
    body = json.dumps({"detail": f"the request body is over the limit of {limit:,} bytes"})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body.encode()})
