"""A served tournament for the fuzz tests, and a snapshot of everything a request may change.

Tournament 8 (classic, daily) has round 1 open; tournament 11 (weekly) has no round. alice
and bob each hold 100 NMR and a model in 8 with a key of every scope; alice's model has a
valid submission and 10 NMR staked. The rate limits are raised out of the way, so generated
requests reach the handlers instead of a 429.

`snapshot` reads every table (an API key's last use aside), every ledger balance and the
stored files, so two snapshots differ whenever a request changed anything it must not.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from argon2 import PasswordHasher
from hypothesis import HealthCheck, Phase, settings
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.data.release import DatasetVersion
from crowdquant.db.base import Base
from crowdquant.db.models import ApiScope, Cadence, Rules, StakeChangeKind
from crowdquant.db.session import transaction
from crowdquant.ledger.sql import SqlLedger
from crowdquant.money import NMR_UNIT
from crowdquant.server.app import create_app
from crowdquant.settings import Settings
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import create_api_key, sign_up
from crowdquant.tournament.datasets import publish_dataset_version
from crowdquant.tournament.models import create_model
from crowdquant.tournament.rounds import FeedPublisher, open_round
from crowdquant.tournament.staking import change_stake, grant_nmr
from crowdquant.tournament.submissions import live_ids_of_round, submit_predictions
from crowdquant.tournament.tournaments import create_tournament, get_tournament
from crowdquant.tournament.uploads import new_upload_key

from ..tournament.live_market import (
    TUESDAY_NOON,
    build_dataset_version,
    local_storage,
    market_feed,
)
from .server import serve

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)
SCOPES = [ApiScope.READ, ApiScope.UPLOAD, ApiScope.STAKE]
UNLIMITED = "1000000/minute"
SCALE = int(os.environ.get("CROWDQUANT_FUZZ_SCALE", "1"))
"""How many times more examples than the suite's to generate: set it for a deeper run."""
CALLERS = ["alice", "alice", "bob", None, "wrong_secret", "malformed"]
"""Who sends a generated request: mostly alice, then bob, no one, and refused keys."""
AMOUNTS = [
    *("1", "0.5", "1,000", "0.000000000000000001", "90", "0", "-1", "+1", " 1"),
    *("1e3", "1_0", "\uff11", "1e999999", "NaN", "Infinity", "1" * 40, "1.0000000000000000001"),
]
"""Amounts around what `money.parse_nmr` accepts."""
NOT_COMPARED = {"api_keys": {"last_used_at"}}
"""Columns a refused request may still write: when a key was last used."""


@dataclass
class FuzzWorld:
    url: str
    sessions: sessionmaker[Session]
    storage: LocalStorage
    tokens: dict[str, str]
    """The ``Authorization`` header of each participant (alice, bob), and two of alice's
    that are refused (`wrong_secret`, `malformed`)."""
    ids: dict[str, str]
    """Real values for the path parameters and arguments that name something: models,
    alice's submission, the open round, two files alice PUT for upload (one valid)."""
    predictions: bytes
    """A valid predictions file for the open round."""


@dataclass(frozen=True)
class Snapshot:
    rows: dict[str, list[tuple[Any, ...]]]
    files: list[tuple[str, int]]

    def changes_from(self, before: Snapshot) -> list[str]:
        """What differs from `before`: each table and the files, with the rows that came
        and went."""
        changed = []
        for table, rows in self.rows.items():
            if rows != before.rows[table]:
                added = sorted(set(rows) - set(before.rows[table]), key=repr)[:3]
                gone = sorted(set(before.rows[table]) - set(rows), key=repr)[:3]
                changed.append(f"{table}: added {added}, removed {gone}")
        if self.files != before.files:
            added_files = sorted(set(self.files) - set(before.files))
            gone_files = sorted(set(before.files) - set(self.files))
            changed.append(f"files: added {added_files}, removed {gone_files}")
        return changed


@dataclass
class Unchanged:
    """Watches that a refused request changes nothing: compares a snapshot taken after each
    request with the one taken after the request before."""

    world: FuzzWorld
    last: Snapshot

    @classmethod
    def of(cls, world: FuzzWorld) -> Unchanged:
        return cls(world, snapshot(world))

    def after(self, refused: bool, request: str) -> None:
        now, before = snapshot(self.world), self.last
        self.last = now
        if refused:
            changes = now.changes_from(before)
            assert not changes, f"{request} was refused but changed {changes}"


def snapshot(world: FuzzWorld) -> Snapshot:
    """Every row of every table (ledger balances and postings included) and every file."""
    rows: dict[str, list[tuple[Any, ...]]] = {}
    with world.sessions() as session:
        for table in Base.metadata.sorted_tables:
            skipped = NOT_COMPARED.get(table.name, set())
            columns = [column for column in table.columns if column.name not in skipped]
            found = session.execute(select(*columns)).all()
            rows[table.name] = sorted((tuple(row) for row in found), key=repr)
    files = sorted((found.key, found.size) for found in world.storage.list(""))
    return Snapshot(rows, files)


def fuzz_settings(examples: int) -> settings:
    """The same examples on every run, as many as `examples` times `SCALE`, not shrunk."""
    return settings(
        max_examples=examples * SCALE,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )


def predictions_csv(ids: pd.Index) -> bytes:
    values = np.random.default_rng(0).uniform(0.05, 0.95, len(ids))
    return pd.DataFrame({"id": ids.astype(str), "prediction": values}).to_csv(index=False).encode()


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    """The dataset version every fuzz world publishes, built once per test process."""
    return build_dataset_version(tmp_path_factory.mktemp("fuzz"))


@contextmanager
def fuzz_world(
    sessions: sessionmaker[Session],
    tmp_path: Path,
    built: DatasetVersion,
    *,
    closing: bool = False,
) -> Iterator[FuzzWorld]:
    """The world served on a free port for the block, dataset version `built` published as
    tournament 8's "v1" (diagnostics score on its validation eras). `closing`: the clock
    stands half an hour past round 1's close, before the scheduler has closed it (stake
    changes are refused, uploads are late)."""
    clock = ManualClock(TUESDAY_NOON + timedelta(minutes=5))
    storage = local_storage(tmp_path / "files")
    ledger = SqlLedger(clock)
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    with transaction(sessions) as session:
        ledger.genesis(session)
        publish_dataset_version(session, clock, storage, built)
        create_tournament(session, clock, 8, "classic", Rules.CLASSIC, Cadence.DAILY, "v1")
        create_tournament(session, clock, 11, "weekly", Rules.CLASSIC, Cadence.WEEKLY, "v2")
        publisher = FeedPublisher(market_feed(), storage)
        round_ = open_round(session, clock, get_tournament(session, 8), publisher)
        for name in ("alice", "bob"):
            account = sign_up(session, clock, name, f"{name}@example.org", "x" * 10, hasher=CHEAP)
            model = create_model(session, clock, account, 8, f"{name}_model")
            key = create_api_key(session, clock, account, "all", SCOPES)
            grant_nmr(session, ledger, account, 100 * NMR_UNIT, f"welcome-{name}")
            tokens[name] = f"Token {key.public_id}${key.secret}"
            if name == "alice":
                tokens["wrong_secret"] = f"Token {key.public_id}$not-the-secret"
                tokens["malformed"] = f"Token {key.public_id}"
            ids[f"{name}_model"] = str(model.id)
            if name == "alice":
                live_ids = live_ids_of_round(storage, round_)
                predictions = predictions_csv(live_ids)
                submission = submit_predictions(
                    session,
                    clock,
                    storage,
                    account,
                    model.id,
                    round_,
                    "p.csv",
                    predictions,
                    live_ids=live_ids,
                )
                ids["alice_submission"] = str(submission.id)
                for name, content in (("valid", predictions), ("invalid", b"id,prediction\n")):
                    key = new_upload_key(model, f"{name}.csv")
                    storage.write(key, content)
                    ids[f"alice_{name}_upload"] = key
                change_stake(session, ledger, clock, model, StakeChangeKind.INCREASE, 10 * NMR_UNIT)
        ids["round_id"] = str(round_.id)
        if closing:
            clock.set(round_.close_time + timedelta(minutes=30))
    settings = Settings(
        mode="local",
        home=tmp_path / "home",
        rate_limit_sign_in=UNLIMITED,
        rate_limit_sign_up=UNLIMITED,
        rate_limit_api_key=UNLIMITED,
        rate_limit_upload=UNLIMITED,
        rate_limit_diagnostics=UNLIMITED,
    )
    app = create_app(settings, clock=clock, sessions=sessions, storage=storage, ledger=ledger)
    with serve(app) as url:
        yield FuzzWorld(url, sessions, storage, tokens, ids, predictions)
