"""A simulation's report: Markdown tables and PNG plots from a `SimulationRecord`.

`write_report` writes `report.md` and its plots into a folder, all or nothing: everything is
drawn into a staging folder beside it first, then moved in (the report last), so a failed
run leaves no half report. `summary_lines` gives the console a few lines: the run, how many
models the meta model rested on, and each mechanism check's verdict with its figures. Plots
are drawn with matplotlib's object API and its Agg backend (never pyplot), without the
software stamp, so the same record gives the same files.
"""

from __future__ import annotations

import inspect
import io
import math
import os
import shutil
import tempfile
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from crowdquant.simulate.checks import (
    CHECKS,
    LEVEL,
    MIN_ROUNDS,
    RESAMPLES,
    SEED,
    SPAM_BURNED_SHARE,
    TARGET_HORIZON_DAYS,
    Check,
    best_single_model,
    block_length,
    model_label,
    model_names,
    run_checks,
    spam_burned_down,
)
from crowdquant.simulate.record import BotStakes, SimulationRecord

REPORT = "report.md"
PLOTS = ("nmr_by_archetype.png", "payouts.png", "meta_vs_best.png", "fund.png")
QUANTILES = {
    "min": 0.0,
    "5%": 0.05,
    "25%": 0.25,
    "median": 0.5,
    "75%": 0.75,
    "95%": 0.95,
    "max": 1.0,
}
TRADING_DAYS_PER_YEAR = 252
BOT_STAKES: dict[BotStakes, str] = {
    "compound": "compound (payouts stay staked)",
    "fixed": "fixed (payouts taken, stakes kept where they started)",
}
SIZE = (7.0, 3.6)  # inches, at 100 dpi


@dataclass(frozen=True)
class FundStats:
    """The fund's P&L from its equity curve (1.0 at the start)."""

    days: int
    total_return: float  # final equity − 1
    volatility: float  # std of daily returns × √252
    max_drawdown: float  # the largest fall from a running peak (the start included), ≥ 0


def fund_stats(fund: pd.DataFrame) -> FundStats | None:
    """`FundStats` of the `fund` table; None when it has no books."""
    equity = fund.sort_values("date")["equity"].to_numpy(dtype=float)
    if len(equity) == 0:
        return None
    path = np.concatenate([[1.0], equity])
    returns = path[1:] / path[:-1] - 1
    volatility = math.nan
    if len(returns) > 1:
        volatility = float(np.std(returns, ddof=1)) * math.sqrt(TRADING_DAYS_PER_YEAR)
    drawdown = 1 - path / np.maximum.accumulate(path)
    return FundStats(len(equity), float(equity[-1] - 1), volatility, float(drawdown.max()))


def archetype_table(record: SimulationRecord) -> pd.DataFrame:
    """One row per archetype (and "all"): models, Σ at_risk over rounds, NMR paid, burned and
    net, mean CORR and MMC over the scored (round, model) rows."""
    rows = record.results.assign(archetype=record.results["model_id"].map(record.archetype_of()))
    rows = rows.assign(paid=rows["payout"].clip(lower=0), burned=(-rows["payout"]).clip(lower=0))
    columns = ["at_risk", "paid", "burned", "payout", "corr", "mmc"]
    sums = {"at_risk": "sum", "paid": "sum", "burned": "sum", "payout": "sum"}
    how = {**sums, "corr": "mean", "mmc": "mean"}
    kinds = sorted(record.models["archetype"].unique())
    table = rows.groupby("archetype")[columns].agg(how).reindex(kinds)
    table.loc["all"] = [*rows[list(sums)].sum(), rows["corr"].mean(), rows["mmc"].mean()]
    table = table.fillna({name: 0.0 for name in sums})
    counts = record.models["archetype"].value_counts()
    table.insert(0, "models", [int(counts.get(k, 0)) for k in kinds] + [len(record.models)])
    return table.rename(columns={"payout": "net"})


def payout_ratios(record: SimulationRecord) -> pd.Series:
    """payout ÷ at_risk of every (round, model) row with stake at risk."""
    staked = record.results[record.results["at_risk"] > 0]
    return (staked["payout"] / staked["at_risk"]).rename("return")


def rounds_per_second(record: SimulationRecord) -> float:
    """Rounds run per second of the run's wall-clock time (the market's build included)."""
    return record.rounds_run / record.seconds if record.seconds > 0 else float("inf")


def summary_lines(record: SimulationRecord, checks: Sequence[Check] | None = None) -> list[str]:
    """The run in one line, the NMR paid and burned, and each check's verdict and figures."""
    checks = run_checks(record) if checks is None else checks
    lines = [
        f"{record.rule}, {record.cadence}: {len(record.rounds)} of {record.rounds_run} rounds "
        f"resolved, {len(record.models)} models, {record.seconds:.1f} s "
        f"({rounds_per_second(record):.3g} rounds/s)",
        f"NMR paid {_nmr(record.rounds['paid'].sum())}, "
        f"burned {_nmr(record.rounds['burned'].sum())}",
    ]
    return [
        *lines,
        *_burn_down(record),
        *_blend(record),
        *(f"{check.name}: {_figures(check)}" for check in checks),
    ]


def _burn_down(record: SimulationRecord) -> list[str]:
    """When the spammers' stake was burned down, in one line (none without spammers)."""
    if not (record.models["archetype"] == "spammer").any():
        return []
    burned = spam_burned_down(record)
    then = (
        "the meta model is judged from then on" if burned.round else "the meta model is not judged"
    )
    return [f"{burned.describe()}: {then}"]


def _blend(record: SimulationRecord) -> list[str]:
    """How many models the meta model rested on in its first, last and most concentrated
    rounds, in one line (none without a meta model): a blend down to about one member is that
    model, whatever the checks say of the meta model against the best single one."""
    blends = _blends(record)
    if blends.empty:
        return []
    first, last = blends.iloc[0], blends.iloc[-1]
    fewest = _fewest(blends)
    return [
        f"meta model blend: {_members(first)} in round {first['round']:.0f}, {_members(last)} "
        f"in round {last['round']:.0f}; fewest {_members(fewest)} in round {fewest['round']:.0f}"
    ]


def _blends(record: SimulationRecord) -> pd.DataFrame:
    return record.rounds.dropna(subset=["meta_members"]).sort_values("round")


def _fewest(blends: pd.DataFrame) -> pd.Series:
    """The first round among `_blends` with the fewest effective members."""
    return blends.iloc[int(blends["meta_members"].to_numpy().argmin())]


def _members(row: pd.Series) -> str:
    return (
        f"{row['meta_members']:.1f} effective members (largest weight {row['meta_top_weight']:.0%})"
    )


def write_report(record: SimulationRecord, out: Path) -> Path:
    """Write `out/report.md` and its PNG plots (`PLOTS`); return the report's path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    checks = run_checks(record)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        figures = (_nmr_plot(record), _payout_plot(record), _meta_plot(record), _fund_plot(record))
        for name, figure in zip(PLOTS, figures, strict=True):
            FigureCanvasAgg(figure)
            figure.savefig(staging / name, format="png", metadata={"Software": None})
        (staging / REPORT).write_text(markdown(record, checks), encoding="utf-8")
        out.mkdir(exist_ok=True)
        for name in (*PLOTS, REPORT):
            os.replace(staging / name, out / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / REPORT


# --- Markdown ------------------------------------------------------------------------------------


def markdown(record: SimulationRecord, checks: Sequence[Check]) -> str:
    """The report's text (its plots are referred to by their file names)."""
    counts = record.models["archetype"].value_counts().sort_index()
    per_kind = ", ".join(f"{kind} {count}" for kind, count in counts.items())
    lines = [
        "# Simulation report",
        "",
        f"- Payout rule: {record.rule}",
        f"- Cadence: {record.cadence}",
        f"- Bots' stakes: {BOT_STAKES[record.bot_stakes]}",
        f"- Rounds: {record.rounds_run} run, {len(record.rounds)} resolved",
        f"- Models: {len(record.models)} ({per_kind or 'none'})",
        "",
        *_money(record),
        *_payouts(record),
        *_meta_and_fund(record),
        *_checks(record, checks),
    ]
    return "\n".join(lines)


def _money(record: SimulationRecord) -> list[str]:
    table = archetype_table(record)
    rows = [
        [
            str(kind),
            str(int(row["models"])),
            *(_nmr(row[c]) for c in ("at_risk", "paid", "burned", "net")),
            _score(row["corr"]),
            _score(row["mmc"]),
        ]
        for kind, row in table.iterrows()
    ]
    header = [
        "Archetype",
        "Models",
        "Staked at risk",
        "Paid",
        "Burned",
        "Net NMR",
        "Mean CORR",
        "Mean MMC",
    ]
    return [
        "## NMR by archetype",
        "",
        "Staked at risk is summed over rounds; paid, burned and net are the payouts' sums; "
        "CORR and MMC are means over the scored (round, model) rows.",
        "",
        *_table(header, rows),
        "",
        f"Over all rounds: {_nmr(record.rounds['paid'].sum())} NMR paid, "
        f"{_nmr(record.rounds['burned'].sum())} NMR burned.",
        "",
        "![Mean NMR held per account of each archetype](nmr_by_archetype.png)",
        "",
    ]


def _payouts(record: SimulationRecord) -> list[str]:
    ratios = payout_ratios(record)
    lines = ["## Payouts", ""]
    if ratios.empty:
        return [*lines, "No stake was ever at risk.", ""]
    values = [_score(float(ratios.quantile(q))) for q in QUANTILES.values()]
    return [
        *lines,
        f"Payout ÷ at_risk over the {len(ratios)} (round, model) rows with stake at risk:",
        "",
        *_table([*QUANTILES, "mean"], [[*values, _score(ratios.mean())]]),
        "",
        "![Histogram of payout per NMR at risk](payouts.png)",
        "",
    ]


def _meta_and_fund(record: SimulationRecord) -> list[str]:
    meta = record.rounds.dropna(subset=["meta_corr"])
    lines = ["## Meta model and fund", ""]
    best = _best_in_hindsight(record)
    rows = [["meta model", _score(meta["meta_corr"].mean()), str(len(meta))]]
    if best is not None:
        model_id, mean = best
        scored = record.results[record.results["model_id"] == model_id]["corr"].count()
        rows.append(
            [
                f"best single model in hindsight: {model_label(record, model_id)}",
                _score(mean),
                str(scored),
            ]
        )
    lines += [*_table(["", "Mean CORR", "Rounds"], rows), "", *_blend_table(record)]
    stats = fund_stats(record.fund)
    if stats is None:
        lines += ["No fund books.", ""]
    else:
        lines += [
            *_table(
                ["Fund", "Total return", "Annualised volatility", "Max drawdown", "Days"],
                [
                    [
                        "meta model long/short",
                        _pct(stats.total_return),
                        _pct(stats.volatility),
                        _pct(stats.max_drawdown),
                        str(stats.days),
                    ]
                ],
            ),
            "",
        ]
    return [
        *lines,
        "![Cumulative CORR of the meta model and the best single model](meta_vs_best.png)",
        "",
        "![The fund's equity](fund.png)",
        "",
    ]


def _blend_table(record: SimulationRecord) -> list[str]:
    """The meta model's blend in its first, median, most concentrated and last rounds."""
    blends = _blends(record)
    if blends.empty:
        return []
    fewest = _fewest(blends)
    median = blends[["meta_members", "meta_top_weight"]].median()
    rows = [
        [label, f"{row['meta_members']:.2f}", _pct(row["meta_top_weight"]), where]
        for label, row, where in (
            ("first", blends.iloc[0], f"{blends.iloc[0]['round']:.0f}"),
            ("median", median, "all"),
            ("fewest members", fewest, f"{fewest['round']:.0f}"),
            ("last", blends.iloc[-1], f"{blends.iloc[-1]['round']:.0f}"),
        )
    ]
    return [
        *_table(["Meta model blend", "Effective members", "Largest weight", "Round"], rows),
        "",
        "Effective members: (Σw)² ÷ Σw² of the weights the meta model blended by (n for n "
        "equal weights, 1 where one model holds all of it).",
        "",
    ]


def _checks(record: SimulationRecord, checks: Sequence[Check]) -> list[str]:
    rows = [
        [c.name, c.statistic, _num(c.estimate), _interval(c), f"{c.n} {c.unit}", c.verdict]
        for c in checks
    ]
    header = ["Check", "Statistic", "Estimate", f"{LEVEL:.0%} CI", "n", "Verdict"]
    notes = [f"- **{c.name}**: {c.detail}" for c in checks if c.decided and c.detail]
    definitions = [
        f"- **{check.__name__}**: {' '.join((inspect.getdoc(check) or '').split())}"
        for check in CHECKS
    ]
    block = block_length(record.cadence)
    return [
        "## Mechanism checks",
        "",
        *_table(header, rows),
        "",
        *notes,
        *([""] if notes else []),
        *(f"Burn-down: {line}." for line in _burn_down(record)),
        *([""] if _burn_down(record) else []),
        "Definitions:",
        "",
        *definitions,
        "",
        f"Intervals of a mean: circular block bootstrap, blocks of {block} consecutive rounds "
        f"(one {TARGET_HORIZON_DAYS}-day target window at the {record.cadence} cadence, as "
        "overlapping targets correlate nearby rounds; at most half the rounds a check has), "
        f"{RESAMPLES:,} resamples (seed {SEED}), {LEVEL:.0%} percentile interval. The late-row "
        f"share's interval is the exact Clopper–Pearson one. Fewer than {MIN_ROUNDS} usable "
        "rounds: too few rounds to decide. The spammers' stake counts as burned down from the "
        f"first round where they held at most {SPAM_BURNED_SHARE:.0%} of the stake at risk.",
        "",
    ]


def _best_in_hindsight(record: SimulationRecord) -> tuple[Hashable, float] | None:
    return best_single_model(record.results, record.rounds["round"], model_names(record))


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", r"\|") for cell in cells) + " |"

    return [line(header), "|" + "---|" * len(header), *(line(row) for row in rows)]


def _num(value: float) -> str:
    """A check's figure: 4 significant digits; "–" for a missing value."""
    return f"{value:.4g}" if math.isfinite(value) else "–"


def _nmr(value: float) -> str:
    return f"{value:,.2f}" if math.isfinite(value) else "–"


def _score(value: float) -> str:
    """A CORR, an MMC or a payout per NMR: 4 decimals."""
    return f"{value:.4f}" if math.isfinite(value) else "–"


def _pct(value: float) -> str:
    return f"{value:.2%}" if math.isfinite(value) else "–"


def _interval(check: Check) -> str:
    if math.isnan(check.low):
        return "–"
    return f"[{_num(check.low)}, {_num(check.high)}]"


def _figures(check: Check) -> str:
    """E.g. "spammers' payout per NMR at risk per round: -0.0012 [-0.0019, -0.0004],
    180 rounds — holds"."""
    if not check.decided:
        return check.verdict
    return (
        f"{check.statistic}: {_num(check.estimate)} {_interval(check)}, "
        f"{check.n} {check.unit} — {check.verdict}" + (f" ({check.detail})" if check.detail else "")
    )


# --- side by side ----------------------------------------------------------------------------


COMPARISON = "compare.md"
COMPARISON_PLOTS = ("compare_nmr_by_archetype.svg", "compare_meta_corr.svg")


def comparison_markdown(runs: Sequence[tuple[str, SimulationRecord]]) -> str:
    """One table: a column per rule setting (named), a row per figure and mechanism check."""
    checks = [run_checks(record) for _, record in runs]
    rows: list[tuple[str, list[str]]] = [
        ("payout rule", [record.rule for _, record in runs]),
        ("meta model weighting", [record.weighting for _, record in runs]),
        ("rounds resolved", [str(len(record.rounds)) for _, record in runs]),
        ("NMR paid", [_nmr(record.rounds["paid"].sum()) for _, record in runs]),
        ("NMR burned", [_nmr(record.rounds["burned"].sum()) for _, record in runs]),
        ("mean meta model CORR", [_num(record.rounds["meta_corr"].mean()) for _, record in runs]),
        ("meta model blend, last round", [_last_blend_cell(record) for _, record in runs]),
    ]
    if any((record.models["archetype"] == "spammer").any() for _, record in runs):
        rows.append(("spam stake burned down", [_burned_cell(record) for _, record in runs]))
    for k, check in enumerate(checks[0] if checks else []):
        rows.append((check.name, [_verdict_cell(found[k]) for found in checks]))
    header = "| figure | " + " | ".join(f"[{name}]({name}/{REPORT})" for name, _ in runs) + " |"
    lines = [
        "# Simulation: rule settings side by side",
        "",
        "The same seed, population and rounds under each setting; each column links its own "
        "report (tables and plots).",
        "",
        header,
        "|---|" + "---|" * len(runs),
        *(f"| {name} | " + " | ".join(cells) + " |" for name, cells in rows),
        "",
        "![Mean NMR held per account of each archetype, a line per setting]"
        f"({COMPARISON_PLOTS[0]})",
        "",
        f"![The meta model's cumulative CORR, a line per setting]({COMPARISON_PLOTS[1]})",
    ]
    return "\n".join(lines) + "\n"


def _last_blend_cell(record: SimulationRecord) -> str:
    blends = _blends(record)
    return "none" if blends.empty else _members(blends.iloc[-1])


def _burned_cell(record: SimulationRecord) -> str:
    burned = spam_burned_down(record)
    return "never" if burned.round is None else f"round {burned.round}"


def _verdict_cell(check: Check) -> str:
    if not check.decided:
        return check.verdict
    return f"{check.verdict}: {_num(check.estimate)} {_interval(check)}"


def write_comparison(runs: Sequence[tuple[str, SimulationRecord]], out: Path) -> Path:
    """Write `out/compare.md` and its SVG plots (`COMPARISON_PLOTS`) beside the runs' own
    reports; return its path."""
    path = Path(out) / COMPARISON
    path.parent.mkdir(parents=True, exist_ok=True)
    figures = (_compare_nmr_plot(runs), _compare_meta_plot(runs))
    for name, figure in zip(COMPARISON_PLOTS, figures, strict=True):
        (path.parent / name).write_text(_svg(figure, name), encoding="utf-8")
    path.write_text(comparison_markdown(runs), encoding="utf-8")
    return path


def _svg(figure: Figure, salt: str) -> str:
    """The figure as SVG, its text kept as text and its ids from a fixed salt: the same
    figure always gives the same bytes."""
    FigureCanvasAgg(figure)
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.hashsalt": f"crowdquant:{salt}", "svg.fonttype": "none"}):
        figure.savefig(
            buffer,
            format="svg",
            metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
        )
    return buffer.getvalue()


def _compare_nmr_plot(runs: Sequence[tuple[str, SimulationRecord]]) -> Figure:
    """A panel per archetype: its mean NMR held per account over the rounds, a line per
    setting (named)."""
    title = "Mean NMR held per account, by archetype and setting"
    held = {
        name: record.holdings.groupby(["round", "archetype"])["nmr"].mean().unstack()
        for name, record in runs
        if not record.holdings.empty
    }
    kinds = sorted({str(kind) for frame in held.values() for kind in frame.columns})
    if not kinds:
        return _empty(title, "no holdings recorded")
    columns = min(3, len(kinds))
    rows = math.ceil(len(kinds) / columns)
    figure = Figure(figsize=(SIZE[0], 2.2 * rows + 0.8), dpi=100, layout="constrained")
    figure.suptitle(title, fontsize="medium")
    grid = np.atleast_1d(figure.subplots(rows, columns, squeeze=False)).ravel()
    for axes, kind in zip(grid, kinds, strict=False):
        axes.set_title(kind, fontsize="small")
        axes.grid(alpha=0.3)
        axes.tick_params(labelsize="x-small")
        for name, frame in held.items():
            if kind in frame.columns:
                axes.plot(frame.index, frame[kind], linewidth=1.2, label=name)
    for axes in grid[len(kinds) :]:
        axes.set_visible(False)
    handles, labels = grid[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", ncols=len(labels), frameon=False)
    return figure


def _compare_meta_plot(runs: Sequence[tuple[str, SimulationRecord]]) -> Figure:
    """The meta model's cumulative CORR over the rounds, a line per setting (named)."""
    title = "The meta model's cumulative CORR, by setting"
    metas = {
        name: record.rounds.dropna(subset=["meta_corr"]).set_index("round")["meta_corr"]
        for name, record in runs
    }
    metas = {name: meta.sort_index() for name, meta in metas.items() if not meta.empty}
    if not metas:
        return _empty(title, "no meta model scores")
    figure, axes = _axes(title, "round", "cumulative CORR")
    for name, meta in metas.items():
        axes.plot(meta.index, meta.cumsum(), linewidth=1.4, label=name)
    axes.axhline(0.0, color="0.6", linewidth=0.8)
    axes.legend(loc="best", fontsize="small", frameon=False)
    return figure


# --- plots ---------------------------------------------------------------------------------------


def _axes(title: str, x_label: str, y_label: str) -> tuple[Figure, Axes]:
    figure = Figure(figsize=SIZE, dpi=100, layout="constrained")
    axes = figure.subplots()
    axes.set_title(title, fontsize="medium")
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.grid(alpha=0.3)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    return figure, axes


def _empty(title: str, message: str) -> Figure:
    figure = Figure(figsize=(SIZE[0], SIZE[1] / 2), dpi=100)
    figure.text(0.5, 0.7, title, ha="center", va="center", fontsize="medium")
    figure.text(0.5, 0.35, message, ha="center", va="center", color="0.4")
    return figure


def _nmr_plot(record: SimulationRecord) -> Figure:
    title = "Mean NMR held per account, by archetype"
    if record.holdings.empty:
        return _empty(title, "no holdings recorded")
    held = record.holdings.groupby(["round", "archetype"])["nmr"].mean().unstack()
    figure, axes = _axes(title, "round", "NMR")
    for kind in held.columns:
        axes.plot(held.index, held[kind], linewidth=1.4, label=str(kind))
    axes.legend(loc="best", fontsize="small", frameon=False)
    return figure


def _payout_plot(record: SimulationRecord) -> Figure:
    title = "Payout per NMR at risk, all staked (round, model) rows"
    ratios = payout_ratios(record).dropna()
    if ratios.empty:
        return _empty(title, "no stake was ever at risk")
    figure, axes = _axes(title, "payout ÷ at_risk", "rows")
    axes.hist(ratios.to_numpy(), bins=50, color="#4c72b0")
    axes.axvline(0.0, color="0.4", linewidth=0.8)
    return figure


def _meta_plot(record: SimulationRecord) -> Figure:
    title = "Cumulative CORR: meta model vs best single model (in hindsight)"
    meta = record.rounds.dropna(subset=["meta_corr"]).set_index("round")["meta_corr"].sort_index()
    if meta.empty:
        return _empty(title, "no meta model scores")
    figure, axes = _axes(title, "round", "cumulative CORR")
    axes.plot(meta.index, meta.cumsum(), linewidth=1.6, label="meta model")
    best = _best_in_hindsight(record)
    if best is not None:
        rows = record.results[record.results["model_id"] == best[0]]
        corr = rows.set_index("round")["corr"].reindex(meta.index).fillna(0.0)
        axes.plot(corr.index, corr.cumsum(), linewidth=1.2, label=model_label(record, best[0]))
    axes.axhline(0.0, color="0.6", linewidth=0.8)
    axes.legend(loc="best", fontsize="small", frameon=False)
    return figure


def _fund_plot(record: SimulationRecord) -> Figure:
    title = "The meta model's fund: equity (1.0 at the start)"
    if record.fund.empty:
        return _empty(title, "no fund books")
    fund = record.fund.sort_values("date")
    figure, axes = _axes(title, "date", "equity")
    axes.plot(pd.to_datetime(fund["date"]), fund["equity"], linewidth=1.4)
    axes.axhline(1.0, color="0.6", linewidth=0.8)
    return figure
