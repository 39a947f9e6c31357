"""Talking to the app in this process: its real routes through httpx's ASGI transport, no
sockets.

`AppTransport` hands each request of a synchronous httpx client to the ASGI app, on an event
loop of its own that the caller runs while it waits. numerapi speaks `requests`, so
`requests_through` gives numerapi, for a block, a `requests` whose calls to the app's URL
go through the same transport (any other URL goes out as before).
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import httpx
import numerapi.base_api
import numerapi.utils
import requests
import requests.adapters
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers

APP_URL = "http://crowdquant.simulation"
"""The base URL the bots reach the app in this process by (never resolved)."""


Answer = tuple[int, list[tuple[str, str]], bytes]
"""The app's answer: status, headers, body."""


class AppTransport(httpx.BaseTransport):
    """A synchronous httpx transport answering from an ASGI app, on an event loop of its own
    that the calling thread runs while it waits for each answer: no thread of its own to wake
    and hear back from. One lasting task answers every request, so the app's blocking work
    goes to worker threads kept from one request to the next (as under a server), rather
    than threads started for each. One request at a time, from whichever thread."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        # an app's failure answers 500, as a server would
        self._asgi = httpx.ASGITransport(app, raise_app_exceptions=False)
        self._inbox: asyncio.Queue[tuple[httpx.Request, asyncio.Future[Answer]] | None] = (
            asyncio.Queue()
        )
        self._turn = threading.Lock()
        self._serving = self._loop.create_task(self._serve())

    async def _serve(self) -> None:
        """The loop's lasting task, the root the app's worker threads belong to: it answers
        each request itself, in turn, until told to stop."""
        while (item := await self._inbox.get()) is not None:
            request, reply = item
            try:
                reply.set_result(await self._send(request))
            except Exception as error:  # the caller's to raise (the app's own answer 500)
                reply.set_exception(error)
        await self._loop.shutdown_default_executor()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()  # the body at once: the app reads it as a stream of one piece
        with self._turn:
            if self._loop.is_closed():
                raise RuntimeError("the app's transport is closed")
            reply: asyncio.Future[Answer] = self._loop.create_future()
            self._inbox.put_nowait((request, reply))
            status, headers, content = self._loop.run_until_complete(reply)
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _send(self, request: httpx.Request) -> Answer:
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return response.status_code, response.headers.multi_items(), content

    def close(self) -> None:
        """Stop the loop and the app's worker threads (once: every client sharing the
        transport closes it)."""
        with self._turn:
            if self._loop.is_closed():
                return
            self._inbox.put_nowait(None)
            self._loop.run_until_complete(self._serving)
            self._loop.close()


class RequestsAdapter(requests.adapters.BaseAdapter):
    """A `requests` adapter that hands each request straight to an httpx transport (the
    app's): `requests` has already merged the session's headers, so no httpx client sits in
    between (and keeps no cookies: the app's API sets none)."""

    def __init__(self, transport: httpx.BaseTransport) -> None:
        super().__init__()
        self.transport = transport

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Any = None,
        verify: Any = True,
        cert: Any = None,
        proxies: Mapping[str, str] | None = None,
    ) -> requests.Response:
        body = request.body
        if body is not None and not isinstance(body, str | bytes):
            raise TypeError("a request to the app in process sends its body at once")
        headers = [
            (name, value if isinstance(value, str) else value.decode("latin-1"))
            for name, value in request.headers.items()
        ]
        sent = httpx.Request(
            request.method or "GET", request.url or "", headers=headers, content=body
        )
        answer = self.transport.handle_request(sent)
        try:
            content = answer.read()
        finally:
            answer.close()
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(content)
        response.reason = answer.reason_phrase
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


@contextmanager
def requests_through(transport: httpx.BaseTransport) -> Iterator[None]:
    """For the block, numerapi's requests to `APP_URL` go through `transport`."""
    session = requests.Session()  # the app's requests: they never leave the process, so
    session.trust_env = False  # no proxy or netrc settings to look up for each
    session.mount(APP_URL, RequestsAdapter(transport))
    outside = requests.Session()  # any other URL, as requests sends it

    def to(method: str) -> Any:
        def send(url: str, *args: Any, **kwargs: Any) -> requests.Response:
            chosen = session if str(url).startswith(APP_URL) else outside
            response: requests.Response = getattr(chosen, method)(url, *args, **kwargs)
            return response

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
        session.close()
        outside.close()
