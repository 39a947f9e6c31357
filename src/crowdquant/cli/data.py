"""`crowdquant data …`: build, audit and export dataset versions."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

if TYPE_CHECKING:
    import pandas as pd
    from rich.progress import Progress

    from crowdquant.data.build import AnySource
    from crowdquant.data.config import DatasetConfig
    from crowdquant.data.release import DatasetVersion

data_app = typer.Typer(no_args_is_help=True, help=__doc__)
console = Console()
BUILD_STEPS = (
    "load", "targets", "features", "assemble", "example model", "benchmark models", "write",
)  # fmt: skip
# the audit gate's default (`crowdquant.data.audit.DEFAULT_THRESHOLD`), kept here so that the
# command's help needs no import of the audit
DEFAULT_MAX_REIDENTIFICATION = 0.05


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]error:[/] {message}", soft_wrap=True)
    return typer.Exit(code=1)


def progress_bar(label_width: int) -> Progress:
    """The console's progress bar for long work: what it does, a bar, steps done, time.
    Shown on a terminal only (rich's `TTY_COMPATIBLE=1` asks for it elsewhere)."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn(f"[bold]{{task.description:<{label_width}}}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    )


@contextmanager
def progress_reporter(label_width: int, first: str) -> Iterator[Callable[[str, int, int], None]]:
    """A progress bar as the callback the services take: told (what runs now, steps done,
    steps in all), it shows them."""
    with progress_bar(label_width) as progress:
        task = progress.add_task(first, total=None)

        def report(what: str, done: int, total: int) -> None:
            progress.update(task, description=what, completed=done, total=total)

        yield report


def _source(kind: str, path: Path | None, stocks: int, weeks: int, seed: int) -> AnySource:
    from crowdquant.data.sources import BundledSource, FileSource, SyntheticSource
    from crowdquant.data.sources.synthetic import SyntheticConfig

    if kind == "bundled":
        return BundledSource()
    if kind == "file":
        if path is None:
            raise _fail("--path is required with --source file")
        return FileSource(path=path)
    if kind == "synthetic":
        return SyntheticSource(market=SyntheticConfig(n_stocks=stocks, n_weeks=weeks, seed=seed))
    raise _fail(f"unknown source {kind!r}: use bundled, file or synthetic")


def _config(
    path: Path | None, mixing: bool | None, main_target: str | None = None
) -> DatasetConfig:
    from crowdquant.data.config import DatasetConfig

    config = (
        DatasetConfig() if path is None else DatasetConfig.model_validate_json(path.read_text())
    )
    if mixing is not None:
        anonymisation = config.anonymisation.model_copy(update={"mixing": mixing})
        config = config.model_copy(update={"anonymisation": anonymisation})
    if main_target is not None:
        config = config.model_copy(
            update={"targets": config.targets.model_copy(update={"main": main_target})}
        )
    return DatasetConfig.model_validate(config.model_dump())


def run_build(
    source: AnySource,
    *,
    config: DatasetConfig | None = None,
    version: str | None = None,
    until: pd.Timestamp | None = None,
    max_reidentification: float | None = None,
    reuse: bool = False,
) -> DatasetVersion:
    from crowdquant.data.build import build_version
    from crowdquant.data.config import DatasetConfig
    from crowdquant.data.keys import load_or_create_keys
    from crowdquant.data.release import DatasetVersion
    from crowdquant.settings import Settings

    settings = Settings()
    config = config or DatasetConfig()
    if reuse and version and (settings.datasets_dir / version).exists():
        existing = DatasetVersion.open(version, settings.datasets_dir, settings.operator_dir)
        console.print(f"dataset version [bold]{version}[/] is already built")
        _print_summary(existing, existing.build_info()["summary"])
        return existing
    keys = load_or_create_keys(settings.keyfile)
    steps = [
        *BUILD_STEPS[:-1],
        *(["audit gate"] if max_reidentification is not None else []),
        "write",
    ]
    with progress_bar(14) as progress:
        task = progress.add_task("building", total=len(steps))

        def report(step: str) -> None:
            progress.update(task, description=step, completed=steps.index(step))

        try:
            written, built = build_version(
                source,
                config,
                keys,
                settings.datasets_dir,
                settings.operator_dir,
                version=version,
                until=until,
                max_reidentification=max_reidentification,
                report=report,
            )
        except (ValueError, RuntimeError) as exc:
            raise _fail(str(exc)) from exc
        progress.update(task, completed=len(steps))
    _print_summary(written, built.summary)
    return written


def _print_summary(version: DatasetVersion, summary: dict[str, Any]) -> None:
    from rich.table import Table

    table = Table(title=f"dataset version {version.version}")
    for column in ("split", "eras", "rows", "first era", "last era"):
        table.add_column(column, justify="right" if column != "split" else "left")
    for split, s in summary["splits"].items():
        table.add_row(split, str(s["eras"]), f"{s['rows']:,}", s["first_era"], s["last_era"])
    console.print(table)
    corr = summary["example_validation_corr"]
    console.print(
        f"source [bold]{summary['source']}[/] · {summary['tickers']} stocks · "
        f"{summary['features']} features · example model validation CORR "
        f"{corr['mean']:+.4f} (Sharpe {corr['sharpe']:.2f})"
    )
    for target, value in summary.get("benchmark_validation_corr", {}).items():
        console.print(f"benchmark model on {target}: validation CORR {value:+.4f}")
    if "single_era_reidentification" in summary:
        console.print(f"single-era re-identification: {summary['single_era_reidentification']:.1%}")
    console.print(f"published: {version.published}\noperator only: {version.private}")


@data_app.command("build")
def build_command(
    source: Annotated[str, typer.Option(help="bundled, file or synthetic")] = "bundled",
    path: Annotated[
        Path | None, typer.Option(help="panel file (CSV/Parquet) for --source file")
    ] = None,
    stocks: Annotated[int, typer.Option(help="synthetic: number of stocks")] = 500,
    weeks: Annotated[int, typer.Option(help="synthetic: weeks of history, warm-up included")] = 320,
    seed: Annotated[int, typer.Option(help="synthetic: random seed")] = 0,
    until: Annotated[
        str | None, typer.Option(help="use history up to this date (YYYY-MM-DD)")
    ] = None,
    version: Annotated[str | None, typer.Option(help="version name (default: derived)")] = None,
    config: Annotated[Path | None, typer.Option(help="DatasetConfig as JSON")] = None,
    mixing: Annotated[
        bool | None, typer.Option("--mixing/--no-mixing", help="secret mixing")
    ] = None,
    main_target: Annotated[
        str | None,
        typer.Option(help="the target `target` copies and rounds score (default target_ender_20)"),
    ] = None,
    gate: Annotated[
        bool, typer.Option("--gate/--no-gate", help="refuse a build the audit re-identifies")
    ] = False,
    max_reidentification: Annotated[
        float, typer.Option(help="the gate's limit on single-era re-identification")
    ] = DEFAULT_MAX_REIDENTIFICATION,
) -> None:
    """Build an anonymised dataset version from a price panel."""
    import pandas as pd

    try:
        dataset_config = _config(config, mixing, main_target)
        cutoff = None if until is None else pd.Timestamp(until)
        chosen = _source(source, path, stocks, weeks, seed)
    except (OSError, ValueError) as exc:
        raise _fail(str(exc)) from exc
    run_build(
        chosen,
        config=dataset_config,
        version=version,
        until=cutoff,
        max_reidentification=max_reidentification if gate else None,
    )


@data_app.command("audit")
def audit_command(
    version: Annotated[str, typer.Argument(help="dataset version name")],
    out: Annotated[Path | None, typer.Option(help="report directory")] = None,
    max_reidentification: Annotated[
        float, typer.Option(help="the gate's limit on single-era re-identification")
    ] = DEFAULT_MAX_REIDENTIFICATION,
    fail: Annotated[
        bool, typer.Option("--fail/--no-fail", help="exit 1 when the gate fails")
    ] = False,
) -> None:
    """Run the leakage attacks against a built version and write JSON, Markdown and a plot."""
    import pandas as pd

    from crowdquant.data.audit import AuditInput, run_audit
    from crowdquant.data.release import DatasetVersion
    from crowdquant.data.sources import load_panel, stored_source
    from crowdquant.settings import Settings

    settings = Settings()
    try:
        found = DatasetVersion.open(version, settings.datasets_dir, settings.operator_dir)
        info = found.build_info()
        source = stored_source(info["source"])
        panel = load_panel(source, found.config().min_stocks_per_era)
        if info.get("until"):
            panel = panel.until(pd.Timestamp(info["until"]))
    except (ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    with progress_reporter(18, "leakage audit") as progress:
        report = run_audit(
            AuditInput.from_version(found, panel),
            threshold=max_reidentification,
            progress=progress,
        )
    directory = out or settings.home / "audits" / version
    for written in report.write(directory):
        console.print(f"wrote {written}")
    console.print(report.to_markdown())
    if fail and not report.passed:
        raise typer.Exit(code=1)


@data_app.command("export-legacy")
def export_2017_command(
    version: Annotated[str, typer.Argument(help="dataset version name")],
    out: Annotated[Path, typer.Option(help="CSV file to write")] = Path("numerai_dataset.csv"),
) -> None:
    """Write a version in the 2017 layout: one CSV with train/validation/test/live rows."""
    from crowdquant.data.release import DatasetVersion
    from crowdquant.data.rules2017 import export_2017
    from crowdquant.settings import Settings

    settings = Settings()
    try:
        found = DatasetVersion.open(version, settings.datasets_dir, settings.operator_dir)
    except (ValueError, RuntimeError) as exc:
        raise _fail(str(exc)) from exc
    with console.status("exporting"):
        export_2017(found, out)
    console.print(f"wrote {out} ({out.stat().st_size:,} bytes)")
