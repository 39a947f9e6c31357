"""The `crowdquant` command."""

# The command modules declare options only with light imports; each command imports what it
# runs when it runs, so `crowdquant … --help` starts fast (tests/cli/test_startup.py).

from __future__ import annotations

import typer

import crowdquant.cli.aliases  # noqa: F401 (adds `data alias` to data_app)
from crowdquant.cli.compute import compute_app
from crowdquant.cli.data import data_app
from crowdquant.cli.demo import demo
from crowdquant.cli.fund import fund_app
from crowdquant.cli.ledger import ledger_app
from crowdquant.cli.models import model_app
from crowdquant.cli.operator import (
    account_app,
    db_app,
    key_app,
    round_app,
    serve,
    tournament_app,
)
from crowdquant.cli.simulate import simulate
from crowdquant.cli.webhooks import webhooks_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__)
app.add_typer(data_app, name="data")
app.add_typer(db_app, name="db")
app.add_typer(tournament_app, name="tournament")
app.add_typer(account_app, name="account")
app.add_typer(key_app, name="key")
app.add_typer(model_app, name="model")
app.add_typer(round_app, name="round")
app.add_typer(fund_app, name="fund")
app.add_typer(ledger_app, name="ledger")
app.add_typer(compute_app, name="compute")
app.add_typer(webhooks_app, name="webhooks")
app.command()(serve)
app.command()(demo)
app.command()(simulate)


def main() -> None:
    app()
