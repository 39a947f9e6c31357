"""The sweep of submission files no row names, on both storage backends and both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session, sessionmaker

from crowdquant.storage import FileStorage
from crowdquant.tournament.retention import Retention, SweepCursor, sweep_orphan_files

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


def test_each_sweep_looks_at_one_page_of_files_and_the_next_goes_on_from_there(
    storage: FileStorage, sessions: sessionmaker[Session]
) -> None:
    keys = [f"submissions/r{n}/m/s.csv" for n in range(5)]
    for key in keys:
        storage.write(key, b"id,prediction\n")
    retention = Retention(orphan_grace=timedelta(days=1), scan_per_tick=2)
    later, cursor = datetime.now(UTC) + timedelta(days=2), SweepCursor()

    deleted = []
    for _ in range(3):
        left = {found.key for found in storage.list("submissions")}
        assert sweep_orphan_files(sessions, storage, later, retention, cursor) >= 1
        deleted.append(sorted(left - {found.key for found in storage.list("submissions")}))
    assert deleted == [keys[0:2], keys[2:4], keys[4:]]  # a page each, in key order
    assert cursor.file_key is None  # past the end: the next sweep starts over

    storage.write("submissions/r9/m/new.csv", b"id,prediction\n")
    assert sweep_orphan_files(sessions, storage, later, retention, cursor) == 1


def test_a_page_with_more_orphans_than_a_sweep_deletes_is_finished_next_time(
    storage: FileStorage, sessions: sessionmaker[Session]
) -> None:
    for key in KEYS:
        storage.write(key, b"id,prediction\n")
    retention = Retention(orphan_grace=timedelta(days=1), per_tick=1, scan_per_tick=3)
    later, cursor = datetime.now(UTC) + timedelta(days=2), SweepCursor()
    assert [sweep_orphan_files(sessions, storage, later, retention, cursor) for _ in KEYS] == [
        1,
        1,
        1,
    ]
    assert storage.list("submissions") == []
