"""Serving an app with uvicorn on a free port, and what the REST tests share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db.models import Model, Submission
from crowdquant.storage import LocalStorage

API = "/api/v1"


@dataclass
class RestWorld:
    """Tournament 8 with round 1 open, tournament 11 without rounds; alice and bob each have
    a model in 8. Tokens: alice's `full` (read, upload), `reader`, `uploader`, `revoked`;
    bob's `full`."""

    url: str
    clock: ManualClock
    storage: LocalStorage
    sessions: sessionmaker[Session]
    tokens: dict[str, str]
    alice_model: str
    bob_model: str
    live_ids: pd.Index
    max_upload_bytes: int

    def client(self, token: str | None = "alice") -> httpx.Client:
        """A client of the REST API with `tokens[token]` (None: no Authorization)."""
        headers = {} if token is None else {"Authorization": f"Token {self.tokens[token]}"}
        return httpx.Client(base_url=self.url + API, headers=headers, timeout=30)

    def count(self, table: type[Model] | type[Submission]) -> int:
        with self.sessions() as session:
            return session.scalar(select(func.count()).select_from(table)) or 0

    def stored(self, prefix: str) -> list[str]:
        return sorted(found.key for found in self.storage.list(prefix))


def predictions_csv(ids: pd.Index, seed: int = 0) -> bytes:
    values = np.random.default_rng(seed).uniform(0.05, 0.95, len(ids))
    frame = pd.DataFrame({"id": ids.astype(str), "prediction": values})
    return frame.to_csv(index=False).encode()


def refused(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Check a refusal's status and shape; returns its detail."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"detail"}
    detail: dict[str, Any] = body["detail"]
    assert set(detail) == {"code", "message"}
    assert detail["code"] == code, detail
    assert isinstance(detail["message"], str)
    assert detail["message"]
    return detail
