"""`crowdquant fund backtest`'s work: the backtests, the report and the table."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
from rich.table import Table

from crowdquant.cli.data import _fail, console, progress_bar
from crowdquant.data.panel import PanelError
from crowdquant.data.release import DatasetVersion, ReleaseError
from crowdquant.data.splits import VALIDATION
from crowdquant.fund.allocation import (
    EQUAL,
    REPUTATION_FLOOR,
    STAKE,
    STAKE_REPUTATION,
    AllocationError,
    allocation_weights,
    compare_allocations,
)
from crowdquant.fund.backtest import BacktestConfig, BacktestResult, VersionBacktest
from crowdquant.fund.costs import CostModel
from crowdquant.fund.portfolio import PORTFOLIO_VERSION, PortfolioLimits
from crowdquant.fund.report import METRICS, formatted, write_report
from crowdquant.scoring.validation import SubmissionError, validate_submission
from crowdquant.settings import Settings

EXAMPLE = "example model"
META = "meta model"
BLEND_NAMES = {
    STAKE_REPUTATION: META,
    STAKE: "stake-weighted blend",
    EQUAL: "equal-weight blend",
}


def _stakes(values: list[str], models: list[str]) -> pd.Series:
    """`NAME=AMOUNT` options → a stake per model (1 for any not named)."""
    stakes = pd.Series(1.0, index=models)
    for value in values:
        name, sep, amount = value.partition("=")
        name = EXAMPLE if name.strip() == "example" else name.strip()
        if not sep or name not in stakes.index:
            raise _fail(f"--stake {value!r}: use NAME=AMOUNT with NAME one of {models}")
        try:
            stakes[name] = float(amount)
        except ValueError as exc:
            raise _fail(f"--stake {value!r}: {amount!r} is not a number") from exc
    return stakes


def _read_predictions(paths: list[Path], ids: pd.Index) -> dict[str, pd.Series]:
    read: dict[str, pd.Series] = {}
    for path in paths:
        name = path.stem
        if name in read or name == EXAMPLE:
            raise _fail(f"two prediction files are named {name!r}: rename one")
        try:
            checked = validate_submission(path.read_bytes(), ids, filename=path.name)
        except OSError as exc:
            raise _fail(f"cannot read {path}: {exc}") from exc
        except SubmissionError as exc:
            raise _fail(f"{path.name}: {exc}") from exc
        read[name] = checked.predictions.reindex(ids)
    return read


def _print_table(results: list[BacktestResult]) -> None:
    """Figures as rows, curves as columns: narrow enough for a terminal."""
    table = Table(title="the fund's backtest (after costs)")
    table.add_column("")
    for result in results:
        table.add_column(result.name, justify="right")
    figures = [r.performance.as_dict() for r in results]
    for key, (label, _, _) in METRICS.items():
        table.add_row(label, *(formatted(key, f[key]) for f in figures))
    console.print(table)


def run_backtest(
    version: str,
    *,
    out: Path | None,
    predictions: list[Path],
    stake: list[str],
    rebalance_every: int,
    max_position: float,
    max_gross: float,
    max_turnover: float,
    commission_bps: float,
    half_spread_bps: float,
) -> None:
    """Backtest the example model, the blends and any prediction files; write the report."""
    settings = Settings()
    try:
        found = DatasetVersion.open(version, settings.datasets_dir, settings.operator_dir)
        config = BacktestConfig.for_dataset(
            found.config(),
            rebalance_every=rebalance_every,
            limits=PortfolioLimits(
                max_position=max_position, max_gross=max_gross, max_turnover=max_turnover
            ),
            costs=CostModel(commission_bps=commission_bps, half_spread_bps=half_spread_bps),
        )
        with console.status("loading the version's prices and id map"):
            backtest = VersionBacktest(found, config)
            frame = found.frame(VALIDATION)[["era", "target"]]
            example = found.example_predictions(VALIDATION)["prediction"]
    except (ValueError, ReleaseError, PanelError, OSError) as exc:
        raise _fail(str(exc)) from exc
    ids = backtest.ids
    models = {EXAMPLE: example.reindex(ids), **_read_predictions(predictions, ids)}
    table = pd.DataFrame(models, index=ids)
    stakes = _stakes(stake, list(models))
    try:
        allocation_weights(STAKE, stakes)
    except AllocationError as exc:
        raise _fail(f"--stake: {exc}") from exc
    if len(models) == 1:
        console.print("only the example model: the blends equal it (add --predictions files)")

    results: list[BacktestResult] = []
    with progress_bar(28) as progress:
        task = progress.add_task("backtest", total=len(models) + len(BLEND_NAMES))
        for name, values in models.items():
            progress.update(task, description=name)
            results.append(backtest.run(name, values))
            progress.advance(task)

        def run(name: str, blended: pd.Series) -> BacktestResult:
            progress.update(task, description=name)
            result = backtest.run(name, blended)
            progress.advance(task)
            return result

        blends = compare_allocations(
            table,
            frame["era"].astype(str),
            frame["target"],
            stakes,
            run,
            delay=found.config().targets.span_eras,
            names=BLEND_NAMES,
        )
    singles = list(results)
    results = [blends[STAKE_REPUTATION], *results, blends[STAKE], blends[EQUAL]]
    chart = [META, BLEND_NAMES[EQUAL], EXAMPLE]
    if len(singles) > 1:
        best = max(singles, key=lambda r: np.nan_to_num(r.performance.sharpe, nan=-np.inf))
        best_name = f"best single ({best.name})"
        results.insert(1, dataclasses.replace(best, name=best_name))
        chart.insert(1, best_name)

    directory = out or settings.fund_reports_dir / version
    files = write_report(
        results,
        directory,
        title=f"crowdquant fund backtest · {version} · {VALIDATION}",
        context={
            "dataset version": version,
            "eras": f"{VALIDATION}: {len(backtest.labels)} eras, "
            f"{backtest.labels.iloc[0]}–{backtest.labels.iloc[-1]}",
            "timing": f"trade {config.lag} trading days after each era day; rebalance every "
            f"{config.rebalance_every} era(s); hold at most {config.horizon} trading days",
            "portfolio": f"{PORTFOLIO_VERSION}: {config.limits.model_dump_json()}",
            "costs": config.costs.model_dump_json(),
            "meta model": f"{STAKE_REPUTATION}: stake × max(trailing reputation, "
            f"{REPUTATION_FLOOR}); reputations resolved {found.config().targets.span_eras} "
            "eras before each era",
            "stakes": ", ".join(f"{k}={v:g}" for k, v in stakes.items()),
            "best single": "the single model with the highest Sharpe, chosen in hindsight",
        },
        chart=chart,
    )
    _print_table(results)
    relaxed = sum(r.relaxed for r in results)
    if relaxed:
        console.print(f"{relaxed} book(s) needed their turnover limit relaxed")
    for path in dataclasses.astuple(files):
        console.print(f"wrote {path}")
