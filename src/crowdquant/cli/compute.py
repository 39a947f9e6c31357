"""`crowdquant compute`: running participants' uploaded models."""

from __future__ import annotations

from typing import Annotated

import typer

from crowdquant.cli.data import console
from crowdquant.cli.operator import operator

compute_app = typer.Typer(
    no_args_is_help=True, help="Uploaded models: the workers that run them, their runtimes."
)
runtime_app = typer.Typer(
    no_args_is_help=True, help="The Python environments uploaded models run in."
)
compute_app.add_typer(runtime_app, name="runtime")


@compute_app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="run the waiting jobs, then stop")] = False,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="seconds between looks for new jobs")
    ] = 5.0,
) -> None:
    """Run uploaded models' jobs in the sandbox until Ctrl-C (beside or instead of the one
    `serve` runs: CROWDQUANT_COMPUTE_LOCAL_WORKER=false); on a Dask cluster's workers when
    CROWDQUANT_COMPUTE_DASK_SCHEDULER names its scheduler."""
    import threading

    from crowdquant.compute.cluster import ClusterUnavailable, connect
    from crowdquant.compute.runtime import runtimes_from_settings
    from crowdquant.compute.sandbox import SandboxLimits
    from crowdquant.settings import Settings
    from crowdquant.tournament.compute_jobs import ComputeWorker

    settings = Settings()
    cluster = None
    if settings.compute_dask_scheduler:
        try:
            cluster = connect(settings.compute_dask_scheduler)
        except ClusterUnavailable as problem:
            console.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
    try:
        with operator(settings) as ops:
            runner = ComputeWorker(
                ops.sessions,
                ops.clock,
                ops.storage,
                limits=SandboxLimits.from_settings(settings),
                runtimes=runtimes_from_settings(settings),
                cluster=cluster,
            )
            if once:
                done = runner.run_until_idle()
                console.print(f"ran {len(done)} job{'s' if len(done) != 1 else ''}")
                return
            console.print(f"{runner.name} running jobs (Ctrl-C stops)")
            stop = threading.Event()
            try:
                runner.run_forever(stop, poll_seconds)
            except KeyboardInterrupt:
                stop.set()
    finally:
        if cluster is not None:
            cluster.close()  # type: ignore[no-untyped-call]
    console.print("stopped")


@runtime_app.command("list")
def list_runtimes() -> None:
    """The runtimes a model may ask for, and whether each is built."""
    from crowdquant.compute.runtime import RuntimeProblem, runtimes_from_settings
    from crowdquant.settings import Settings

    runtimes = runtimes_from_settings(Settings())
    for name in runtimes.names():
        try:
            found = runtimes.get(name)
            state = f"Python {found.python_version}, {found.lock_hash}"
        except RuntimeProblem as problem:
            state = str(problem)
        console.print(f"{name}: {state}", markup=False, highlight=False, soft_wrap=True)


@runtime_app.command("build")
def build_runtime(
    name: Annotated[
        str | None, typer.Argument(help="the runtime to build (default: every named one)")
    ] = None,
) -> None:
    """Install a named runtime from its lock file (uv sync --locked, with this machine's
    Python and a package index) into the runtimes folder (CROWDQUANT_COMPUTE_RUNTIMES_ROOT,
    by default $CROWDQUANT_HOME/runtimes), replacing an earlier build: run it while no
    worker runs jobs."""
    from crowdquant.compute.runtime import DEFAULT_RUNTIME, RuntimeProblem, runtimes_from_settings
    from crowdquant.settings import Settings

    runtimes = runtimes_from_settings(Settings())
    if name == DEFAULT_RUNTIME:
        console.print("the default runtime is the server's own environment: nothing to build")
        return
    for each in [name] if name else runtimes.names()[1:]:
        console.print(f"building {each} …", markup=False)
        try:
            built = runtimes.build(each)
        except RuntimeProblem as problem:
            console.print(f"error: {problem}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(1) from None
        console.print(
            f"built {each}: Python {built.python_version}, {built.lock_hash}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )
