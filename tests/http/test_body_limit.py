"""Request bodies are capped before they are read, over real HTTP on both backends."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.http.body_limit import FORM_OVERHEAD_BYTES
from crowdquant.server.app import create_app
from crowdquant.settings import Settings

from ..api.server import serve
from ..tournament.live_market import TUESDAY_NOON, local_storage

MAX_REQUEST_BYTES = 4096
MAX_UPLOAD_BYTES = 16 * 1024
HUGE = 300 * 1024 * 1024


@pytest.fixture
def url(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[str]:
    settings = Settings(home=tmp_path / "home", max_request_bytes=MAX_REQUEST_BYTES)
    app = create_app(
        settings,
        clock=ManualClock(TUESDAY_NOON),
        sessions=sessions,
        storage=local_storage(tmp_path / "files"),
        max_upload_bytes=MAX_UPLOAD_BYTES,
    )
    with serve(app) as served:
        yield served


def _exchange(url: str, head: str, chunks: Iterable[bytes]) -> tuple[int, str]:
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


def _head(method: str, path: str, content_type: str, length: str) -> str:
    return (
        f"{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n"
        f"Content-Type: {content_type}\r\n{length}\r\n"
    )


def _chunked(size: int, piece: bytes = b"x" * 1024) -> Iterator[bytes]:
    for _ in range(size // len(piece)):
        yield f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    yield b"0\r\n\r\n"


BODIES = [
    ("POST", "/", "application/json"),  # GraphQL
    ("POST", "/api/v1/models", "application/json"),  # REST JSON
    ("POST", "/login", "application/x-www-form-urlencoded"),  # a page's form
]


@pytest.mark.parametrize(("method", "path", "content_type"), BODIES)
def test_a_body_declared_too_large_is_refused_before_it_is_sent(
    url: str, method: str, path: str, content_type: str
) -> None:
    # 300 MiB announced, not a byte sent: the answer comes at once, naming the limit.
    status, body = _exchange(url, _head(method, path, content_type, f"Content-Length: {HUGE}"), [])
    assert status == 413
    assert f"the request body is over the limit of {MAX_REQUEST_BYTES:,} bytes" in body
    if path.startswith("/api/v1/"):  # REST's own shape of a refusal
        assert '"code":"request_too_large"' in body
    if path == "/":  # GraphQL's
        assert body.startswith('{"errors":[{"message":"the request body is over the limit')


@pytest.mark.parametrize(("method", "path", "content_type"), BODIES)
def test_a_streamed_body_is_refused_once_it_passes_the_cap(
    url: str, method: str, path: str, content_type: str
) -> None:
    head = _head(method, path, content_type, "Transfer-Encoding: chunked")
    status, body = _exchange(url, head, _chunked(64 * 1024))
    assert status == 413
    assert f"over the limit of {MAX_REQUEST_BYTES:,} bytes" in body


def test_a_streamed_multipart_upload_is_refused_past_the_upload_cap(url: str) -> None:
    # A multipart body takes the upload cap, wherever it is sent and whoever reads it.
    head = _head("POST", "/", "multipart/form-data; boundary=b", "Transfer-Encoding: chunked")
    status, body = _exchange(url, head, _chunked(4 * MAX_UPLOAD_BYTES + 128 * 1024))
    assert status == 413
    assert f"over the limit of {MAX_UPLOAD_BYTES + FORM_OVERHEAD_BYTES:,} bytes" in body


def test_a_small_body_passes(url: str) -> None:
    query = b'{"query": "{ rounds(tournament: 8) { number } }"}'
    head = _head("POST", "/", "application/json", f"Content-Length: {len(query)}")
    status, body = _exchange(url, head, [query])
    assert status == 200
    assert '"data"' in body
