"""A daily scoring pass's inputs: the round's cached prediction matrix against its uploads.

    uv run python benchmarks/scoring_inputs.py      # 1,000 uploads × 6,000 rows

Each daily pass of `tournament.scoring` needs the round's (N × K) prediction matrix. The
reference reads and validates every upload again (what the first pass and `replay_round`
do); ours reads the matrix the first pass cached as one Parquet file. Both give the same
matrix, checked in the run.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from crowdquant.storage import LocalStorage
from crowdquant.tournament.scoring.inputs import (
    ScoredSubmission,
    _cached_prediction_matrix,
    _prediction_matrix,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=6000)
    parser.add_argument("--submissions", type=int, default=1000)
    args = parser.parse_args()
    n, k = args.rows, args.submissions
    rng = np.random.default_rng(0)
    ids = pd.Index(sorted(f"n{i:015x}" for i in range(n)), name="id")
    with tempfile.TemporaryDirectory() as folder:
        storage = LocalStorage(Path(folder), fsync=False)
        uploads = []
        for column in range(k):
            key = f"submissions/{column}.csv"
            frame = pd.DataFrame({"id": ids, "prediction": rng.uniform(size=n).round(6)})
            storage.write(key, frame.to_csv(index=False).encode())
            uploads.append(ScoredSubmission(uuid.uuid4(), uuid.uuid4(), False, key, "p.csv"))
        round_ = SimpleNamespace(id=uuid.uuid4())  # the cache is keyed by the round's id

        start = time.perf_counter()
        reference = _prediction_matrix(storage, ids, uploads)
        from_files = time.perf_counter() - start
        _cached_prediction_matrix(storage, round_, ids, uploads)  # type: ignore[arg-type]
        start = time.perf_counter()
        cached = _cached_prediction_matrix(storage, round_, ids, uploads)  # type: ignore[arg-type]
        from_cache = time.perf_counter() - start
    assert np.array_equal(cached, reference)
    print(f"prediction matrix of {k:,} uploads × {n:,} rows")
    print(f"  reference, every upload read and validated: {from_files:8.2f} s")
    print(f"  ours, the round's cached matrix:            {from_cache:8.2f} s")
    print(f"  ratio: {from_files / from_cache:.0f}× faster")


if __name__ == "__main__":
    main()
