"""The `crowdquant` command."""

from __future__ import annotations

import typer

from crowdquant.cli.data import data_app, run_build
from crowdquant.data.sources import BundledSource

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(data_app, name="data")


@app.command()
def demo() -> None:
    """Build the bundled real-market dataset (if not built yet) and print its summary."""
    run_build(BundledSource(), version="bundled-demo", reuse=True)


def main() -> None:
    app()
