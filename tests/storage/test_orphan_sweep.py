"""The sweep of submission files no row names, on both storage backends and both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from crowdquant.storage import FileStorage
from crowdquant.tournament.retention import Retention, sweep_orphan_files

KEYS = [f"submissions/r{n}/m/s.csv" for n in range(3)]


def test_orphans_go_once_past_the_grace_period_a_few_per_sweep(
    storage: FileStorage, sessions: sessionmaker[Session]
) -> None:
    for key in KEYS:
        storage.write(key, b"id,prediction\n")
    storage.write("datasets/v1/live.parquet", b"other folders are never swept")
    retention = Retention(orphan_grace=timedelta(days=1), per_tick=2)
    now = datetime.now(UTC)

    assert sweep_orphan_files(sessions, storage, now, retention) == 0  # still fresh
    later = now + timedelta(days=2)
    assert sweep_orphan_files(sessions, storage, later, retention) == 2
    assert sweep_orphan_files(sessions, storage, later, retention) == 1
    assert sweep_orphan_files(sessions, storage, later, retention) == 0
    assert [found.key for found in storage.list("")] == ["datasets/v1/live.parquet"]
