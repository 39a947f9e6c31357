"""Request bodies are capped before they are read, over real HTTP on both backends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.server.app import create_app
from crowdquant.settings import Settings

from ..api.server import chunked, exchange, request_head, serve
from ..tournament.live_market import TUESDAY_NOON, local_storage

MAX_REQUEST_BYTES = 4096
HUGE = 300 * 1024 * 1024


@pytest.fixture
def url(sessions: sessionmaker[Session], tmp_path: Path) -> Iterator[str]:
    settings = Settings(home=tmp_path / "home", max_request_bytes=MAX_REQUEST_BYTES)
    app = create_app(
        settings,
        clock=ManualClock(TUESDAY_NOON),
        sessions=sessions,
        storage=local_storage(tmp_path / "files"),
    )
    with serve(app) as served:
        yield served


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
    status, body = exchange(
        url, request_head(method, path, content_type, f"Content-Length: {HUGE}"), []
    )
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
    head = request_head(method, path, content_type, "Transfer-Encoding: chunked")
    status, body = exchange(url, head, chunked(64 * 1024))
    assert status == 413
    assert f"over the limit of {MAX_REQUEST_BYTES:,} bytes" in body


def test_a_multipart_body_sent_where_no_upload_is_taken_gets_the_request_cap(url: str) -> None:
    head = request_head(
        "POST", "/", "multipart/form-data; boundary=b", "Transfer-Encoding: chunked"
    )
    status, body = exchange(url, head, chunked(64 * 1024))
    assert status == 413
    assert f"the request body is over the limit of {MAX_REQUEST_BYTES:,} bytes" in body


def test_a_small_body_passes(url: str) -> None:
    query = b'{"query": "{ rounds(tournament: 8) { number } }"}'
    head = request_head("POST", "/", "application/json", f"Content-Length: {len(query)}")
    status, body = exchange(url, head, [query])
    assert status == 200
    assert '"data"' in body
