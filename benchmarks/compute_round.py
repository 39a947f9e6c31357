"""One round of uploaded models: sandboxed runs against the same predict in-process.

    uv run python benchmarks/compute_round.py [--models 50] [--rows 5000] [--parallel 2]

Pickles `--models` models (every other one LightGBM, the rest ridge regressions), then
runs each on one live file in the bubblewrap sandbox (`compute.sandbox.run_model`,
`--parallel` at a time) and, as the reference, calls each unpickled predict in this process
(its imports already loaded) and in a fresh interpreter without the sandbox. Prints jobs
per minute, the sandbox's overhead per job against both (medians: against in-process it
includes starting Python and importing pandas and the model's libraries, against the fresh
interpreter it is what bubblewrap, the limits and the runner's checks add), and the peak
memory of a run. Not a test: figures
vary by machine and load.
"""

from __future__ import annotations

import argparse
import pickle
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cloudpickle
import numpy as np
import pandas as pd

from crowdquant.compute.sandbox import SandboxLimits, SandboxResult, run_model

FEATURES = 50


def live_frame(rows: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    columns = [f"feature_{i}" for i in range(FEATURES)]
    ids = pd.Index([f"n{i:06d}" for i in range(rows)], name="id")
    values = rng.integers(0, 5, (rows, FEATURES)).astype("int8")
    return pd.DataFrame(values, index=ids, columns=columns)


def model_bytes(index: int) -> bytes:
    rng = np.random.default_rng(index)
    train = rng.integers(0, 5, (2000, FEATURES)).astype(float)
    target = rng.normal(size=2000)
    if index % 2 == 0:
        import lightgbm

        fitted = lightgbm.LGBMRegressor(n_estimators=200, num_leaves=15, verbose=-1, n_jobs=1)
    else:
        from sklearn.linear_model import Ridge

        fitted = Ridge()
    fitted.fit(train, target)

    def predict(live: pd.DataFrame, benchmarks: pd.DataFrame) -> pd.DataFrame:
        values = fitted.predict(live.to_numpy(dtype=float))
        return pd.Series(values, index=live.index).rank(pct=True).to_frame("prediction")

    return bytes(cloudpickle.dumps(predict))


def in_process(data: bytes, live: pd.DataFrame) -> float:
    start = time.perf_counter()
    predict = pickle.loads(data)
    predict(live, pd.DataFrame())
    return time.perf_counter() - start


FRESH_PROCESS = """
import pickle, sys
import pandas as pd
predict = pickle.load(open(sys.argv[1], "rb"))
predict(pd.read_parquet(sys.argv[2]), pd.DataFrame()).to_parquet(sys.argv[3])
"""


def fresh_process(model: Path, live: Path) -> float:
    """The same run in a plain new interpreter, without the sandbox."""
    start = time.perf_counter()
    out = model.with_suffix(".out.parquet")
    subprocess.run([sys.executable, "-I", "-c", FRESH_PROCESS, model, live, out], check=True)
    return time.perf_counter() - start


def both(model: Path, live: Path, limits: SandboxLimits) -> tuple[SandboxResult, float]:
    """A sandboxed run and a fresh interpreter's, one after the other, so that both see the
    same load."""
    result = run_model(model, live, limits=limits)
    return result, fresh_process(model, live)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--parallel", type=int, default=2)
    args = parser.parse_args()

    live = live_frame(args.rows)
    pickles = [model_bytes(i) for i in range(args.models)]
    reference = [in_process(data, live) for data in pickles]

    with tempfile.TemporaryDirectory() as tmp:
        live_path = Path(tmp) / "live.parquet"
        live.to_parquet(live_path)
        paths = []
        for i, data in enumerate(pickles):
            paths.append(Path(tmp) / f"model{i}.pkl")
            paths[-1].write_bytes(data)
        limits = SandboxLimits()
        start = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda p: run_model(p, live_path, limits=limits), paths))
        elapsed = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        with ThreadPoolExecutor(args.parallel) as pool:  # again, each beside its fresh run
            pairs = list(pool.map(lambda p: both(p, live_path, limits), paths))

    failed = [r.describe() for r in [*results, *(r for r, _ in pairs)] if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} runs failed, e.g. {failed[0]}")
    sandboxed = [r.seconds for r in results]
    overhead = [run - ref for run, ref in zip(sandboxed, reference, strict=True)]
    fresh = [plain for _, plain in pairs]
    bwrap_cost = [result.seconds - plain for result, plain in pairs]
    print(f"{args.models} models, {args.rows} live rows x {FEATURES} features,", end=" ")
    print(f"{args.parallel} at a time")
    print(f"jobs per minute                   {60 * args.models / elapsed:8.1f}")
    print(f"in-process predict, median        {statistics.median(reference):8.3f} s")
    print(f"fresh interpreter, median         {statistics.median(fresh):8.3f} s")
    print(f"sandboxed run, median             {statistics.median(sandboxed):8.3f} s")
    print(f"overhead vs in-process, median    {statistics.median(overhead):8.3f} s")
    print(f"overhead vs fresh process, median {statistics.median(bwrap_cost):8.3f} s")
    print(f"peak memory of one run            {peak:8.0f} MiB")


if __name__ == "__main__":
    main()
