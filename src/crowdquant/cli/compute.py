"""`crowdquant compute`: running participants' uploaded models."""

from __future__ import annotations

from typing import Annotated

import typer

from crowdquant.cli.data import console
from crowdquant.cli.operator import operator

compute_app = typer.Typer(no_args_is_help=True, help="Uploaded models: the workers that run them.")


@compute_app.command("worker")
def worker(
    once: Annotated[bool, typer.Option("--once", help="run the waiting jobs, then stop")] = False,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="seconds between looks for new jobs")
    ] = 5.0,
) -> None:
    """Run uploaded models' jobs in the sandbox until Ctrl-C (beside or instead of the one
    `serve` runs: CROWDQUANT_COMPUTE_LOCAL_WORKER=false)."""
    import threading

    from crowdquant.compute.sandbox import SandboxLimits
    from crowdquant.settings import Settings
    from crowdquant.tournament.compute_jobs import ComputeWorker

    settings = Settings()
    with operator(settings) as ops:
        runner = ComputeWorker(
            ops.sessions, ops.clock, ops.storage, limits=SandboxLimits.from_settings(settings)
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
    console.print("stopped")
