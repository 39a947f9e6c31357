"""Talking to the app in this process: its real routes through httpx's ASGI transport, no
sockets.

`AppTransport` hands each request of a synchronous httpx client to the ASGI app, on an event
loop of its own (in a thread of its own). numerapi speaks `requests`, so
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


class AppTransport(httpx.BaseTransport):
    """A synchronous httpx transport answering from an ASGI app, run on an event loop of its
    own in a thread of its own; the calling thread waits for each answer. The loop runs one
    task from start to close, so the app's blocking work goes to worker threads kept from one
    request to the next (as under a server), rather than threads started for each."""

    def __init__(self, app: Any) -> None:
        self._loop = asyncio.new_event_loop()
        # an app's failure answers 500, as a server would
        self._asgi = httpx.ASGITransport(app, raise_app_exceptions=False)
        self._stopping = asyncio.Event()
        started = threading.Event()
        self._thread = threading.Thread(
            target=self._loop.run_until_complete,
            args=(self._serve(started),),
            name="crowdquant-app-transport",
            daemon=True,
        )
        self._thread.start()
        started.wait()

    async def _serve(self, started: threading.Event) -> None:
        """The loop's lasting task: the root the app's worker threads belong to."""
        started.set()
        await self._stopping.wait()
        await self._loop.shutdown_default_executor()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        body = request.read()
        answer = asyncio.run_coroutine_threadsafe(
            self._send(request.method, str(request.url), request.headers.multi_items(), body),
            self._loop,
        )
        status, headers, content = answer.result()
        return httpx.Response(status, headers=headers, content=content, request=request)

    async def _send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        request = httpx.Request(method, url, headers=headers, content=body)
        response = await self._asgi.handle_async_request(request)
        content = await response.aread()
        return response.status_code, response.headers.multi_items(), content

    def close(self) -> None:
        """Stop the loop and its threads (once: every client sharing the transport closes it)."""
        if self._loop.is_closed():
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join()
        self._loop.close()


class RequestsAdapter(requests.adapters.BaseAdapter):
    """A `requests` adapter that sends through an httpx client (the app's transport)."""

    def __init__(self, client: httpx.Client) -> None:
        super().__init__()
        self.client = client

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
        answer = self.client.request(
            request.method or "GET", request.url or "", headers=headers, content=body
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headers)
        response.encoding = get_encoding_from_headers(response.headers)
        response.raw = io.BytesIO(answer.content)
        response.reason = answer.reason_phrase
        response.url = request.url or ""
        response.request = request
        return response

    def close(self) -> None:
        pass


@contextmanager
def requests_through(transport: httpx.BaseTransport) -> Iterator[None]:
    """For the block, numerapi's requests to `APP_URL` go through `transport`."""
    session = requests.Session()
    client = httpx.Client(transport=transport, timeout=None)
    session.mount(APP_URL, RequestsAdapter(client))
    shim = SimpleNamespace(
        get=session.get,
        post=session.post,
        put=session.put,
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
        client.close()
