"""The app served by uvicorn on a free port in a thread, for tests that speak real HTTP, and
a raw HTTP client for requests an ordinary client will not send (a body that stops short
of its length, a body streamed past a limit)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from urllib.parse import urlsplit

import uvicorn


@contextmanager
def serve(app: object) -> Iterator[str]:
    """The app served by uvicorn in a thread; yields its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def exchange(url: str, head: str, chunks: Iterable[bytes]) -> tuple[int, str]:
    """Send a request's head, then its body chunk by chunk until the server stops reading,
    reading its answer meanwhile; the answer's status and body."""
    address = urlsplit(url)
    answer = bytearray()
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:

        def read() -> None:
            with suppress(OSError):  # a reset after the answer, for the body left unread
                while piece := conn.recv(65536):
                    answer.extend(piece)

        reader = threading.Thread(target=read)
        reader.start()
        with suppress(OSError):  # the server answered and closed while the body was coming
            conn.sendall(head.encode() + b"\r\n")
            for chunk in chunks:
                conn.sendall(chunk)
        reader.join(timeout=10)
    status_line, _, rest = answer.decode().partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


def request_head(method: str, path: str, content_type: str, length: str) -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\n{length}\r\n"
    )


def chunked(size: int, piece: bytes = b"x" * 1024) -> Iterator[bytes]:
    for _ in range(size // len(piece)):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"
