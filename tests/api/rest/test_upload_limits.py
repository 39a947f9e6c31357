"""Uploads judged by their size before decoding, and their refusals stored short."""

from __future__ import annotations

import io
from typing import Any

import pandas as pd
import pytest

from crowdquant.db.models import Submission
from crowdquant.http.body_limit import FORM_OVERHEAD_BYTES
from crowdquant.scoring.validation import MAX_MESSAGE_CHARS, row_limit

from ...scoring.test_validation_limits import parquet_bomb
from ..server import chunked, exchange, request_head
from .helpers import RestWorld


def test_a_parquet_bomb_is_recorded_invalid_without_being_decoded(
    world: RestWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = parquet_bomb(2)  # 2 M rows in a few KB
    read_parquet = pd.read_parquet

    def refuse_the_bomb(source: object, *args: Any, **kwargs: Any) -> pd.DataFrame:
        if isinstance(source, io.BytesIO) and source.getvalue() == bomb:
            raise AssertionError("the upload was decoded")
        return read_parquet(source, *args, **kwargs)  # the round's live file

    monkeypatch.setattr(pd, "read_parquet", refuse_the_bomb)
    assert len(bomb) < world.max_upload_bytes
    with world.client("alice") as api:
        answer = api.post(
            f"/models/{world.alice_model}/submissions", files={"file": ("bomb.parquet", bomb)}
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "invalid"
    assert answer.json()["error"] == (
        "invalid_submission_file: 'bomb.parquet' holds 2,000,000 rows,"
        f" over the limit of {row_limit(len(world.live_ids)):,} rows"
    )


def test_a_header_only_csv_is_listed_with_a_short_error(world: RestWorld) -> None:
    header = ",".join(f"column_{i}" for i in range(world.max_upload_bytes // 12)).encode()
    with world.client("alice") as api:
        answer = api.post(
            f"/models/{world.alice_model}/submissions", files={"file": ("wide.csv", header)}
        )
        assert answer.status_code == 201, answer.text
        (listed,) = api.get(f"/models/{world.alice_model}/submissions").json()
    assert listed["status"] == "invalid"
    assert len(listed["error"]) <= MAX_MESSAGE_CHARS + 100
    assert listed["error"].startswith("invalid_submission_headers: columns must be exactly")
    assert "['column_0', 'column_1', 'column_2', 'column_3', 'column_4'] and" in listed["error"]


def test_a_streamed_upload_is_refused_once_it_passes_the_upload_cap(world: RestWorld) -> None:
    head = request_head(
        "POST",
        f"/api/v1/models/{world.alice_model}/submissions",
        "multipart/form-data; boundary=b",
        f"Authorization: Token {world.tokens['alice']}\r\nTransfer-Encoding: chunked",
    )
    status, body = exchange(world.url, head, chunked(4 * world.max_upload_bytes + 128 * 1024))
    assert status == 413
    limit = world.max_upload_bytes + FORM_OVERHEAD_BYTES
    assert f'"code":"upload_too_large","message":"the upload is over the limit of {limit:,}' in body
    assert world.count(Submission) == 0
