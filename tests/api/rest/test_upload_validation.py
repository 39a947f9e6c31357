"""Uploads validated in the server's pool before the request writes: no lock is held while
a file is read, and a file that is huge once decoded fails its upload, not the server."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import httpx
import pandas as pd
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.db.models import Account
from crowdquant.db.session import BUSY_TIMEOUT_MS, one_writer_at_a_time
from crowdquant.scoring.validation import LiveIds, ValidatedSubmission
from crowdquant.tournament.validator import ValidationPool

from ...tournament.validation_bombs import decompression_bomb, resident_mb, small_pool
from .helpers import RestWorld, predictions_csv


class WritesWhileValidating:
    """The pool, after a write of its own from another connection that does not wait for
    the write lock: on SQLite that write fails if the upload's request holds the lock."""

    def __init__(self, pool: ValidationPool, sessions: sessionmaker[Session]) -> None:
        self.pool, self.sessions = pool, sessions
        self.wrote: list[bool] = []
        self._emails = itertools.count()

    def validate(
        self, data: bytes, live_ids: LiveIds, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        self.wrote.append(self._write())
        return self.pool.validate(data, live_ids, filename=filename, max_bytes=max_bytes)

    def validate_2017(
        self, data: bytes, row_types: pd.Series, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        return self.pool.validate_2017(data, row_types, filename=filename, max_bytes=max_bytes)

    def close(self) -> None:
        pass

    def _write(self) -> bool:
        sqlite = one_writer_at_a_time(self.sessions)
        with self.sessions() as session:
            if sqlite:
                session.execute(text("PRAGMA busy_timeout = 0"))
            try:
                email = f"bob{next(self._emails)}@example.org"
                session.execute(
                    update(Account).where(Account.username == "bob").values(email=email)
                )
                session.commit()
                return True
            except OperationalError:
                session.rollback()
                return False
            finally:
                if sqlite:
                    session.execute(text(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}"))
                    session.commit()


@pytest.fixture(scope="module")
def pool() -> Iterator[ValidationPool]:
    with small_pool() as started:
        yield started


@pytest.fixture
def validator(pool: ValidationPool, sessions: sessionmaker[Session]) -> WritesWhileValidating:
    return WritesWhileValidating(pool, sessions)


def _graphql(world: RestWorld, query: str, **variables: Any) -> dict[str, Any]:
    answer = httpx.post(
        world.url,
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Token {world.tokens['alice']}"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _upload_by_graphql(world: RestWorld, content: bytes) -> dict[str, Any]:
    """numerapi's three steps: an upload URL, the PUT, the create_submission mutation."""
    auth = _graphql(
        world,
        'query($m: String) { submission_upload_auth(filename: "p.csv", tournament: 8,'
        " modelId: $m) { filename url } }",
        m=world.alice_model,
    )["data"]["submission_upload_auth"]
    assert httpx.put(auth["url"], content=content, timeout=30).status_code == 200
    return _graphql(
        world,
        "mutation($f: String, $m: String) { create_submission(filename: $f, tournament: 8,"
        " modelId: $m) { id } }",
        f=auth["filename"],
        m=world.alice_model,
    )


def test_uploads_are_validated_while_another_request_writes(
    world: RestWorld, validator: WritesWhileValidating
) -> None:
    good = predictions_csv(world.live_ids)
    with world.client("alice") as api:
        answer = api.post(
            f"/models/{world.alice_model}/submissions", files={"file": ("p.csv", good)}
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "valid"
    created = _upload_by_graphql(world, good)
    assert "errors" not in created, created
    assert validator.wrote == [True, True]


def test_a_decompression_bomb_is_recorded_invalid_and_the_server_does_not_grow(
    world: RestWorld,
) -> None:
    bomb = decompression_bomb()  # 1 GiB once decoded
    assert len(bomb) < world.max_upload_bytes
    before = resident_mb()
    with world.client("alice") as api:
        answers = [
            api.post(
                f"/models/{world.alice_model}/submissions",
                files={"file": ("bomb.parquet", bomb)},
            )
            for _ in range(2)
        ]
        good = api.post(
            f"/models/{world.alice_model}/submissions",
            files={"file": ("p.csv", predictions_csv(world.live_ids))},
        )
    for answer in answers:
        assert answer.status_code == 201, answer.text
        assert answer.json()["status"] == "invalid"
        assert answer.json()["error"] == (
            "invalid_submission_file: 'bomb.parquet' needs more than 256 MB to read"
        )
    assert good.status_code == 201, good.text
    assert good.json()["status"] == "valid"
    assert resident_mb() - before < 64  # the server (this process) never decoded the bomb
    created = _upload_by_graphql(world, bomb)
    assert "needs more than 256 MB to read" in created["errors"][0]["message"]
