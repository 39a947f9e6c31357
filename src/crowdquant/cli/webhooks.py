"""`crowdquant webhooks`: sending models' submission webhooks."""

from __future__ import annotations

from typing import Annotated

import typer

from crowdquant.cli.data import console
from crowdquant.cli.operator import operator

webhooks_app = typer.Typer(
    no_args_is_help=True, help="Submission webhooks: the workers that send them."
)


@webhooks_app.command("worker")
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="send the due deliveries, then stop")
    ] = False,
    poll_seconds: Annotated[
        float, typer.Option(min=0.1, help="seconds between looks for due deliveries")
    ] = 2.0,
) -> None:
    """Send webhook deliveries until Ctrl-C (beside or instead of the one `serve` runs:
    CROWDQUANT_WEBHOOK_LOCAL_WORKER=false)."""
    import threading

    from crowdquant.server.serve import webhook_worker
    from crowdquant.settings import Settings

    settings = Settings()
    with operator(settings) as ops:
        sender = webhook_worker(settings, ops)
        if once:
            tried = sender.run_until_idle()
            console.print(f"tried {len(tried)} deliver{'ies' if len(tried) != 1 else 'y'}")
            return
        console.print(f"{sender.name} sending webhook deliveries (Ctrl-C stops)")
        stop = threading.Event()
        try:
            sender.run_forever(stop, poll_seconds)
        except KeyboardInterrupt:
            stop.set()
    console.print("stopped")
