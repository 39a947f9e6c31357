"""`crowdquant fund …`: the fund's backtests on a dataset version's validation eras."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

fund_app = typer.Typer(no_args_is_help=True, help=__doc__)


@fund_app.command("backtest")
def backtest_command(
    version: Annotated[str, typer.Argument(help="dataset version name")],
    out: Annotated[
        Path | None, typer.Option(help="report directory (default: $CROWDQUANT_HOME/fund/VERSION)")
    ] = None,
    predictions: Annotated[
        list[Path] | None,
        typer.Option(
            "--predictions",
            help="validation predictions (CSV or Parquet: id, prediction); repeat for several",
        ),
    ] = None,
    stake: Annotated[
        list[str] | None,
        typer.Option(help="NAME=AMOUNT: a model's stake in the blends (default 1 each)"),
    ] = None,
    rebalance_every: Annotated[int, typer.Option(help="eras between rebalances")] = 1,
    max_position: Annotated[float, typer.Option(help="largest |weight| of one stock")] = 0.10,
    max_gross: Annotated[float, typer.Option(help="Σ|weight|, 2.0 = 100 % long + short")] = 2.0,
    max_turnover: Annotated[float, typer.Option(help="Σ|Δweight| per rebalance")] = 1.0,
    commission_bps: Annotated[float, typer.Option(help="cost per unit traded")] = 1.0,
    half_spread_bps: Annotated[float, typer.Option(help="half spread per unit traded")] = 5.0,
) -> None:
    """Backtest the example model, the blends and any prediction files; write the report."""
    from crowdquant.cli.fund_backtest import run_backtest

    run_backtest(
        version,
        out=out,
        predictions=predictions or [],
        stake=stake or [],
        rebalance_every=rebalance_every,
        max_position=max_position,
        max_gross=max_gross,
        max_turnover=max_turnover,
        commission_bps=commission_bps,
        half_spread_bps=half_spread_bps,
    )
