"""Uploaded models' runs on a Dask distributed cluster, for many machines to share a round.

`run_on_worker` is what a cluster's worker runs for one job: the pickle and the live file
arrive as bytes, the runtime by name, resolved on the worker (`default`: the worker's own
environment; a named one: built under the same runtimes folder there), and the run goes
through the same bubblewrap sandbox as a local one. The worker needs the package, uv-built
runtimes and bubblewrap, but no database or storage access: the job's claim, its lease and
its statuses stay with the process that submitted it (`tournament.compute_jobs`), which
also validates the predictions that come back before anything decodes them.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from crowdquant.compute.runtime import Runtime, Runtimes
from crowdquant.compute.sandbox import SandboxLimits, SandboxResult, run_model

if TYPE_CHECKING:
    from distributed import Client


CONNECT_SECONDS = 20


class ClusterUnavailable(RuntimeError):  # noqa: N818
    """The Dask scheduler could not be reached."""


def connect(address: str) -> Client:
    """A client of the cluster whose scheduler listens at `address` (``tcp://host:8786``);
    raises `ClusterUnavailable` if it cannot be reached."""
    from distributed import Client

    try:
        return Client(  # type: ignore[no-untyped-call]
            address, set_as_default=False, timeout=CONNECT_SECONDS
        )
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterUnavailable(f"cannot reach the Dask scheduler at {address}: {exc}") from exc


def run_on_worker(
    model: bytes,
    live: bytes,
    runtime_name: str,
    limits: SandboxLimits,
    runtimes_dir: str | None,
) -> tuple[SandboxResult, Runtime]:
    """Run the pickled `model` on the `live` features (Parquet) in a sandbox on this
    machine, under runtime `runtime_name`; the result, unvalidated, and the runtime it ran
    under. Raises `RuntimeProblem` for a runtime not built here, `SandboxUnavailable`
    without bubblewrap."""
    runtime = Runtimes(Path(runtimes_dir) if runtimes_dir else None).get(runtime_name)
    with tempfile.TemporaryDirectory(prefix="cq-job-") as tmp:
        model_path, live_path = Path(tmp) / "model.pkl", Path(tmp) / "live.parquet"
        model_path.write_bytes(model)
        live_path.write_bytes(live)
        return run_model(model_path, live_path, limits=limits, runtime=runtime), runtime
