"""Talking to the app in this process: its real routes, called as a server calls them (ASGI),
no sockets.

`AppTransport` hands each request to the ASGI app on an event loop of its own that the
caller runs while it waits; httpx clients take it as their transport. numerapi speaks
`requests`, so `requests_through` gives numerapi, for a block, a `requests` whose calls to
the app's URL go to the same transport (any other URL goes out as before).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx
import numerapi.base_api
import numerapi.utils
import requests
from requests.structures import CaseInsensitiveDict
from requests.utils import default_headers, get_encoding_from_headers

APP_URL = "http://crowdquant.simulation"
"""The base URL the bots reach the app in this process by (never resolved)."""

CLIENT = ("127.0.0.1", 50000)
"""The address the app sees every request in process come from."""

Headers = Sequence[tuple[bytes, bytes]]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]
"""The app's answer: status, headers, body."""


@dataclass(frozen=True)
class Call:
    """One request to the app, whole: its body is sent at once."""

    method: str
    url: str
    headers: Headers
    body: bytes


class AppTransport(httpx.BaseTransport):
    """A synchronous transport answering from an ASGI app, on an event loop of its own that
    the calling thread runs while it waits for each answer: no thread of its own to wake
    and hear back from. One lasting task answers every request, so the app's blocking work
    goes to worker threads kept from one request to the next (as under a server), rather
    than threads started for each. One request at a time, from whichever thread. An app
    that fails before it answers answers 500, as a server would."""

    def __init__(self, app: Any) -> None:
        self._app = app
        self._loop = asyncio.new_event_loop()
        self._inbox: asyncio.Queue[tuple[Call, asyncio.Future[Answer]] | None] = asyncio.Queue()
        self._turn = threading.Lock()
        self._serving = self._loop.create_task(self._serve())

    def answer(self, call: Call) -> Answer:
        """The app's answer to `call`."""
        with self._turn:
            if self._loop.is_closed():
                raise RuntimeError("the app's transport is closed")
            reply: asyncio.Future[Answer] = self._loop.create_future()
            self._inbox.put_nowait((call, reply))
            return self._loop.run_until_complete(reply)

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        call = Call(request.method, str(request.url), request.headers.raw, request.read())
        status, headers, content = self.answer(call)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _serve(self) -> None:
        """The loop's lasting task, the root the app's worker threads belong to: it answers
        each request itself, in turn, until told to stop."""
        while (item := await self._inbox.get()) is not None:
            call, reply = item
            try:
                reply.set_result(await self._call(call))
            except Exception as error:  # a request that cannot be made: the caller's to raise
                reply.set_exception(error)
        await self._loop.shutdown_default_executor()

    async def _call(self, call: Call) -> Answer:
        """`call` made of the app as an ASGI server makes it: the body in one message, the
        client gone once the answer is whole."""
        url = urlsplit(call.url)
        raw_path = url.path or "/"
        headers = [(name.lower(), value) for name, value in call.headers]
        if not any(name == b"host" for name, _ in headers):
            headers.insert(0, (b"host", url.netloc.encode("ascii")))
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": call.method.upper(),
            "scheme": url.scheme,
            "path": unquote(raw_path),
            "raw_path": raw_path.encode("ascii"),
            "query_string": url.query.encode("ascii"),
            "root_path": "",
            "headers": headers,
            "client": CLIENT,
            "server": (url.hostname, url.port or (443 if url.scheme == "https" else 80)),
        }
        answered = asyncio.Event()
        body_sent = False
        status: int | None = None
        answer_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal body_sent
            if not body_sent:
                body_sent = True
                return {"type": "http.request", "body": call.body, "more_body": False}
            await answered.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal status, answer_headers
            if message["type"] == "http.response.start":
                status, answer_headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    answered.set()

        try:
            await self._app(scope, receive, send)
        except Exception:  # the app's own 500 went out already, if it sent one
            if status is None:
                return 500, [], b""
        finally:
            answered.set()
        return (500, [], b"") if status is None else (status, answer_headers, b"".join(chunks))

    def close(self) -> None:
        """Stop the loop and the app's worker threads (once: every client sharing the
        transport closes it)."""
        with self._turn:
            if self._loop.is_closed():
                return
            self._inbox.put_nowait(None)
            self._loop.run_until_complete(self._serving)
            self._loop.close()


def _requests_answer(
    transport: AppTransport, request: requests.PreparedRequest
) -> requests.Response:
    """`request` answered by the app, as `requests` would give back the server's answer."""
    body = request.body
    if body is not None and not isinstance(body, str | bytes):
        raise TypeError("a request to the app in process sends its body at once")
    status, headers, content = transport.answer(
        Call(
            request.method or "GET",
            request.url or "",
            [(name.encode("latin-1"), _latin1(value)) for name, value in request.headers.items()],
            b"" if body is None else _latin1(body),  # a text body as http.client sends it
        )
    )
    response = requests.Response()
    response.status_code = status
    merged: dict[str, str] = {}
    for name, value in headers:  # a header sent twice reads as one, its values joined
        key, text = name.decode("latin-1"), value.decode("latin-1")
        merged[key] = f"{merged[key]}, {text}" if key in merged else text
    response.headers = CaseInsensitiveDict(merged)
    response.encoding = get_encoding_from_headers(response.headers)
    response.raw = io.BytesIO(content)
    response.reason = httpx.codes.get_reason_phrase(status)
    response.url = request.url or ""
    response.request = request
    return response


def _latin1(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("latin-1")


SHAPES_THE_REQUEST = frozenset({"params", "data", "json", "headers"})
"""The keywords of `requests.get` and the rest that numerapi shapes its requests with."""
ABOUT_THE_NETWORK = frozenset({"timeout", "stream", "verify", "allow_redirects"})
"""The keywords numerapi passes about the network, which a request in process never meets."""


@contextmanager
def requests_through(transport: AppTransport) -> Iterator[None]:
    """For the block, numerapi's requests to `APP_URL` go to the app through `transport`, each
    prepared as a `requests` session prepares it: its default headers, less any set to None
    (the app's API keeps no cookies and sends no redirects)."""
    defaults = default_headers()

    def to(method: str) -> Any:
        def send(url: str, **kwargs: Any) -> requests.Response:
            if not str(url).startswith(APP_URL):
                return getattr(requests, method)(url, **kwargs)  # type: ignore[no-any-return]
            unknown = set(kwargs) - SHAPES_THE_REQUEST - ABOUT_THE_NETWORK
            if unknown:
                raise TypeError(f"a request to the app in process takes no {sorted(unknown)}")
            shape = {key: kwargs[key] for key in SHAPES_THE_REQUEST if key in kwargs}
            headers = CaseInsensitiveDict(defaults)
            headers.update(shape.pop("headers", None) or {})
            for name in [name for name, value in headers.items() if value is None]:
                del headers[name]  # a header set to None is not sent, as in a session
            prepared = requests.Request(method.upper(), url, headers=headers, **shape).prepare()
            return _requests_answer(transport, prepared)

        return send

    shim = SimpleNamespace(
        get=to("get"),
        post=to("post"),
        put=to("put"),
        exceptions=requests.exceptions,
    )
    modules = (numerapi.utils, numerapi.base_api)
    previous = [getattr(module, "requests") for module in modules]  # noqa: B009
    for module in modules:
        setattr(module, "requests", shim)  # noqa: B010
    try:
        yield
    finally:
        for module, original in zip(modules, previous, strict=True):
            setattr(module, "requests", original)  # noqa: B010
