"""The backtest report: equity curves and drawdowns as a PNG, one self-contained HTML page
(the PNG embedded, the metrics table, each era's P&L; no script, nothing fetched), the
figures as JSON and the per-era P&L as CSV.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from crowdquant.fund.backtest import BacktestResult

METRICS = {  # name: (label, short label, format)
    "annual_return": ("annual return", "return", "{:+.2%}"),
    "annual_volatility": ("volatility", "vol", "{:.2%}"),
    "sharpe": ("Sharpe", "Sharpe", "{:+.2f}"),
    "max_drawdown": ("max drawdown", "max DD", "{:.2%}"),
    "turnover": ("turnover / rebalance", "turn", "{:.2f}"),
    "annual_turnover": ("turnover / year", "turn/yr", "{:.1f}"),
    "hit_rate": ("hit rate", "hit", "{:.1%}"),
    "annual_cost": ("costs / year", "cost/yr", "{:.2%}"),
    "periods": ("periods", "n", "{:d}"),
}


def metrics_table(results: Sequence[BacktestResult]) -> pd.DataFrame:
    """One row per backtest: the performance figures and how many books were relaxed."""
    rows = {r.name: {**r.performance.as_dict(), "relaxed_books": r.relaxed} for r in results}
    return pd.DataFrame.from_dict(rows, orient="index")


def formatted(name: str, value: float) -> str:
    """A metric as the report prints it."""
    if math.isnan(value):
        return "–"
    pattern = METRICS[name][2] if name in METRICS else "{}"
    return pattern.format(int(value) if pattern == "{:d}" else value)


def plot_png(results: Sequence[BacktestResult], *, title: str) -> bytes:
    """Equity curves (top) and drawdowns (bottom) of the backtests, as PNG bytes."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display
    from matplotlib.ticker import PercentFormatter

    figure = Figure(figsize=(11, 7.5), dpi=100, layout="constrained")
    top, bottom = figure.subplots(2, 1, sharex=True, height_ratios=(2, 1))
    for result in results:
        ends = pd.to_datetime(result.pnl["end"])
        (line,) = top.plot(ends, result.equity.to_numpy(), linewidth=1.4, label=result.name)
        bottom.plot(ends, -result.drawdown.to_numpy(), linewidth=1.0, color=line.get_color())
    top.axhline(1.0, color="0.6", linewidth=0.8)
    top.set_ylabel("equity (start = 1, after costs)")
    top.set_title(title)
    if results:
        top.legend(loc="upper left", fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown")
    bottom.yaxis.set_major_formatter(PercentFormatter(1.0))
    bottom.grid(alpha=0.3)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 70rem; color: #222; }
table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #ddd; padding: 0.3rem 0.7rem; text-align: right; }
th:first-child, td:first-child { text-align: left; }
img { max-width: 100%; }
dt { font-weight: 600; } dd { margin: 0 0 0.4rem 1rem; }
"""


def render_html(
    results: Sequence[BacktestResult],
    png: bytes,
    *,
    title: str,
    context: Mapping[str, object],
) -> str:
    """The whole report as one HTML document: no script, no external resource."""
    e = html.escape
    header = "".join(f"<th>{e(label)}</th>" for label, _, _ in METRICS.values())
    rows = []
    for result in results:
        figures = result.performance.as_dict()
        cells = "".join(f"<td>{e(formatted(k, figures[k]))}</td>" for k in METRICS)
        rows.append(f"<tr><td>{e(result.name)}</td>{cells}<td>{result.relaxed}</td></tr>")
    facts = "".join(f"<dt>{e(str(k))}</dt><dd>{e(str(v))}</dd>" for k, v in context.items())
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>{e(title)}</title><style>{_STYLE}</style></head>
<body>
<h1>{e(title)}</h1>
<img alt="equity curves and drawdowns" src="data:image/png;base64,{image}">
<h2>Figures</h2>
<table><thead><tr><th>curve</th>{header}<th>relaxed books</th></tr></thead>
<tbody>{"".join(rows)}</tbody></table>
<p>Returns are after transaction costs, on a dollar-, beta- and sector-neutral book; the
annual return is compounded, the Sharpe ratio is the annualised mean over the annualised
volatility of the per-period returns, the hit rate is the share of periods that made money.
Turnover is the traded notional as a fraction of equity. A relaxed book is one whose
turnover limit could not be met.</p>
<h2>How it was run</h2>
<dl>{facts}</dl>
<h2>P&amp;L per era</h2>
<details><summary>net return of each period, per curve</summary>
{_per_era_table(results)}
</details>
</body>
</html>
"""


def _per_era_table(results: Sequence[BacktestResult]) -> str:
    if not results:
        return "<p>no curves</p>"
    net = pd.DataFrame({r.name: r.pnl["net"] for r in results})
    eras = pd.concat([r.pnl["era"] for r in results]).groupby(level=0).first()
    e = html.escape
    head = "".join(f"<th>{e(str(c))}</th>" for c in net.columns)
    body = []
    for date, row in net.iterrows():
        label = eras.get(date)
        when = pd.Timestamp(str(date)).date().isoformat()
        name = f"{e(str(label))} ({when})" if isinstance(label, str) else when
        cells = "".join("<td>–</td>" if pd.isna(v) else f"<td>{v:+.3%}</td>" for v in row)
        body.append(f"<tr><td>{name}</td>{cells}</tr>")
    return (
        f"<table><thead><tr><th>era</th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )


@dataclass(frozen=True)
class ReportFiles:
    png: Path
    html: Path
    metrics: Path
    pnl: Path


def _json_safe(value: object) -> object:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


@dataclass(frozen=True)
class StoredReport:
    """A report written by `write_report` into `folder`, as its metrics.json describes it."""

    name: str
    """The folder's name (the dataset version, for the CLI's default folder)."""
    folder: Path
    title: str
    written_at: datetime
    curves: dict[str, dict[str, object]]

    @property
    def html(self) -> Path:
        return self.folder / "report.html"


def stored_reports(root: Path) -> list[StoredReport]:
    """The reports in `root`'s folders (each with report.html and metrics.json), newest
    first; folders without a readable report are left out."""
    found = []
    folders = sorted(root.iterdir()) if root.is_dir() else []
    for folder in folders:
        metrics, html_file = folder / "metrics.json", folder / "report.html"
        if not (metrics.is_file() and html_file.is_file()):
            continue
        try:
            payload = json.loads(metrics.read_text())
            written = datetime.fromtimestamp(html_file.stat().st_mtime, tz=UTC)
            found.append(
                StoredReport(
                    folder.name, folder, str(payload["title"]), written, dict(payload["curves"])
                )
            )
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return sorted(found, key=lambda report: report.written_at, reverse=True)


def write_report(
    results: Sequence[BacktestResult],
    out: Path,
    *,
    title: str,
    context: Mapping[str, object],
    chart: Sequence[str] | None = None,
) -> ReportFiles:
    """Write report.png (the curves named in `chart`, default all), report.html,
    metrics.json and pnl.csv into `out` (created if needed)."""
    out.mkdir(parents=True, exist_ok=True)
    drawn = [r for r in results if chart is None or r.name in chart]
    png = plot_png(drawn, title=title)
    files = ReportFiles(
        png=out / "report.png",
        html=out / "report.html",
        metrics=out / "metrics.json",
        pnl=out / "pnl.csv",
    )
    files.png.write_bytes(png)
    files.html.write_text(render_html(results, png, title=title, context=context))
    curves = {
        r.name: {
            **r.performance.as_dict(),
            "relaxed_books": r.relaxed,
            "config": r.config.model_dump(mode="json"),
        }
        for r in results
    }
    payload = {"title": title, "context": dict(context), "curves": curves}
    files.metrics.write_text(json.dumps(_json_safe(payload), indent=2, default=str) + "\n")
    long = pd.concat(
        [r.pnl.assign(curve=r.name) for r in results] or [pd.DataFrame(columns=["curve"])]
    )
    long.to_csv(files.pnl, index_label="date")
    return files
