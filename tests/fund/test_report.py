"""The report: a PNG, one self-contained HTML page, the figures as JSON, the P&L as CSV."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

from crowdquant.fund.backtest import PNL_COLUMNS, BacktestConfig, BacktestResult
from crowdquant.fund.pnl import performance
from crowdquant.fund.report import metrics_table, plot_png, render_html, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def result(name: str, seed: int, periods: int = 30) -> BacktestResult:
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2021-01-01", periods=periods, freq="W-FRI")
    pnl = pd.DataFrame(
        {
            "era": [f"{k + 1:04d}" for k in range(periods)],
            "start": dates + pd.Timedelta(days=4),
            "end": dates + pd.Timedelta(days=11),
            "days": 5,
            "gross": 0.0,
            "cost": 0.0005,
            "net": 0.002 + 0.01 * rng.standard_normal(periods),
            "traded": 0.8,
            "gross_exposure": 2.0,
            "positions": 40,
            "status": "optimal",
        },
        index=pd.DatetimeIndex(dates, name="date"),
    )[PNL_COLUMNS]
    return BacktestResult(name, pnl, (), performance(pnl), BacktestConfig())


def test_the_png_is_a_png() -> None:
    assert plot_png([result("a", 1), result("b", 2)], title="t").startswith(PNG_MAGIC)
    assert plot_png([], title="nothing").startswith(PNG_MAGIC)


def test_html_is_self_contained_and_escaped() -> None:
    curves = [result("<meta & model>", 1), result("example model", 2)]
    page = render_html(curves, b"PNGDATA", title="fund <report>", context={"version": "v1"})
    assert "<script" not in page.lower()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched
    assert "&lt;meta &amp; model&gt;" in page and "<meta & model>" not in page
    assert "data:image/png;base64," + base64.b64encode(b"PNGDATA").decode() in page
    assert "Sharpe" in page and "max drawdown" in page and "hit rate" in page
    assert "0030" in page  # the per-era table


def test_write_report_writes_all_four_files(tmp_path: Path) -> None:
    curves = [result("meta model", 1), result("example model", 2), result("other", 3)]
    files = write_report(
        curves, tmp_path / "out", title="t", context={"k": 1}, chart=["meta model"]
    )
    assert files.png.read_bytes().startswith(PNG_MAGIC)
    page = files.html.read_text()
    image = re.search(r"data:image/png;base64,([A-Za-z0-9+/=]+)", page)
    assert image and base64.b64decode(image.group(1)) == files.png.read_bytes()
    figures = json.loads(files.metrics.read_text())
    assert list(figures["curves"]) == ["meta model", "example model", "other"]
    meta = figures["curves"]["meta model"]
    assert meta["sharpe"] == curves[0].performance.sharpe
    assert meta["config"]["costs"]["version"] == "linear-spread-v1"
    pnl = pd.read_csv(files.pnl)
    assert len(pnl) == 90 and set(pnl["curve"]) == {"meta model", "example model", "other"}
    table = metrics_table(curves)
    assert list(table.index) == ["meta model", "example model", "other"]
    assert {"annual_return", "annual_volatility", "sharpe", "max_drawdown"} <= set(table.columns)


def test_nan_figures_are_null_in_json(tmp_path: Path) -> None:
    empty = result("empty", 1, periods=0)
    files = write_report([empty], tmp_path, title="t", context={})
    assert json.loads(files.metrics.read_text())["curves"]["empty"]["sharpe"] is None
    assert "–" in files.html.read_text()
