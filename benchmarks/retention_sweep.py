"""The hourly retention sweep against the length of a tournament's history.

    uv run python benchmarks/retention_sweep.py [--uploads 2000 40000] [--sweeps 5]

For each size, a fresh SQLite database and local storage hold that many uploads (50 models,
one upload per model and round, each the file its round is scored by, as after a long
simulation) and the sweep runs `--sweeps` times in a row with one `SweepCursor`, as the
scheduler runs it hour after hour. Printed per size: the median time of a paged sweep (the
default page, `Retention.scan_per_tick`) and of a sweep whose page holds the whole history
(what every sweep read before pages), and their ratio. The paged sweep's time stays flat as
the history grows; the whole-history one grows with it. Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from sqlalchemy import insert
from sqlalchemy.orm import Session, sessionmaker

from crowdquant.clock import ManualClock
from crowdquant.db import migrate
from crowdquant.db.models import Cadence, Round, RoundStatus, Rules, Submission, SubmissionStatus
from crowdquant.db.session import make_engine, session_factory, transaction
from crowdquant.storage import LocalStorage
from crowdquant.tournament.accounts import sign_up
from crowdquant.tournament.models import create_model
from crowdquant.tournament.retention import Retention, SweepCursor, sweep_submission_files
from crowdquant.tournament.submissions import SUBMISSIONS_PREFIX
from crowdquant.tournament.tournaments import create_tournament

MODELS = 50
START = datetime(2001, 1, 9, 12, tzinfo=UTC)
CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def history(folder: Path, uploads: int) -> tuple[sessionmaker[Session], LocalStorage]:
    """A tournament with `uploads` scored uploads, a file each; its sessions and storage."""
    url = f"sqlite:///{folder / 'sweep.db'}"
    migrate.upgrade(url)
    sessions = session_factory(make_engine(url))
    storage = LocalStorage(folder / "files", fsync=False)
    clock = ManualClock(START)
    with transaction(sessions) as session:
        tournament = create_tournament(session, clock, 8, "t8", Rules.CLASSIC, Cadence.DAILY, "v1")
        owner = sign_up(session, clock, "owner", "owner@example.org", "x" * 10, hasher=CHEAP)
        models = [create_model(session, clock, owner, 8, f"model_{k}").id for k in range(MODELS)]
        rows = []
        for number in range(1, uploads // MODELS + 1):
            opened = START + timedelta(days=number)
            round_ = Round(
                tournament_id=tournament.id,
                number=number,
                status=RoundStatus.RESOLVED,
                open_time=opened,
                close_staking_time=opened + timedelta(hours=1),
                close_time=opened + timedelta(hours=1),
                live_era=f"{number:04d}",
                dataset_version="v1",
            )
            session.add(round_)
            session.flush()
            for model_id in models:
                sub_id = uuid.uuid4()
                key = f"{SUBMISSIONS_PREFIX}/{round_.id.hex}/{model_id.hex}/{sub_id.hex}.csv"
                storage.write(key, b"id,prediction\n")
                rows.append(
                    {
                        "id": sub_id,
                        "round_id": round_.id,
                        "model_id": model_id,
                        "file_key": key,
                        "filename": "p.csv",
                        "status": SubmissionStatus.VALID,
                        "late": False,
                        "n_rows": 1,
                        "created_at": opened + timedelta(minutes=5),
                        "validated_at": opened + timedelta(minutes=5),
                    }
                )
        session.execute(insert(Submission), rows)
    return sessions, storage


def median_sweep(
    sessions: sessionmaker[Session], storage: LocalStorage, retention: Retention, sweeps: int
) -> float:
    cursor, times = SweepCursor(), []
    now = START + timedelta(days=10_000)
    for _ in range(sweeps):
        started = time.perf_counter()
        swept = sweep_submission_files(sessions, storage, now, retention, cursor)
        times.append(time.perf_counter() - started)
        assert swept.purged == swept.orphans == 0  # every file is needed and named
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uploads", type=int, nargs="+", default=[2_000, 40_000])
    parser.add_argument("--sweeps", type=int, default=5)
    options = parser.parse_args()
    paged = Retention()
    for uploads in options.uploads:
        with tempfile.TemporaryDirectory() as folder:
            sessions, storage = history(Path(folder), uploads)
            whole = Retention(scan_per_tick=uploads + 1)
            page = median_sweep(sessions, storage, paged, options.sweeps)
            everything = median_sweep(sessions, storage, whole, options.sweeps)
        print(
            f"{uploads:>7,} uploads: paged sweep {page * 1000:7.1f} ms, whole history "
            f"{everything * 1000:7.1f} ms, {everything / page:5.1f}x"
        )


if __name__ == "__main__":
    main()
