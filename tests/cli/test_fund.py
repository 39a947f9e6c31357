"""`crowdquant fund backtest` end to end, on a small synthetic build and on the bundled data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crowdquant.cli import app

runner = CliRunner()
FAST_EXAMPLE = '{"example_model": {"max_iter": 5}}'
SYNTHETIC = ["--source", "synthetic", "--stocks", "60", "--weeks", "110", "--seed", "2"]
REPORT_FILES = ("report.png", "report.html", "metrics.json", "pnl.csv")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path))
    (tmp_path / "config.json").write_text(FAST_EXAMPLE)
    return tmp_path


def build(home: Path, *args: str) -> None:
    result = runner.invoke(
        app, ["data", "build", *args, "--config", str(home / "config.json"), "--version", "v"]
    )
    assert result.exit_code == 0, result.output


def prediction_files(home: Path) -> list[Path]:
    """An informed model (the validation target, blurred) as CSV, and noise as Parquet."""
    validation = pd.read_parquet(home / "datasets" / "v" / "validation.parquet")
    rng = np.random.default_rng(0)
    informed = (validation["target"] + 0.3 * rng.standard_normal(len(validation))).rank(pct=True)
    csv = home / "informed.csv"
    informed.rename("prediction").to_frame().to_csv(csv, index_label="id")
    noise = home / "noise.parquet"
    pd.DataFrame({"prediction": rng.random(len(validation))}, index=validation.index).to_parquet(
        noise
    )
    return [csv, noise]


def test_synthetic_build_with_prediction_files(home: Path) -> None:
    build(home, *SYNTHETIC)
    files = prediction_files(home)
    out = home / "report"
    args = ["fund", "backtest", "v", "--out", str(out), "--stake", "informed=3"]
    for path in files:
        args += ["--predictions", str(path)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
        assert f"wrote {out / name}" in result.output.replace("\n", "")
    curves = json.loads((out / "metrics.json").read_text())["curves"]
    assert list(curves) == [
        "meta model",
        "best single (informed)",
        "example model",
        "informed",
        "noise",
        "stake-weighted blend",
        "equal-weight blend",
    ]
    assert curves["informed"]["sharpe"] > curves["noise"]["sharpe"]
    for figures in curves.values():
        assert figures["periods"] > 0 and 0 <= figures["hit_rate"] <= 1
    html = (out / "report.html").read_text()
    assert "best single (informed)" in html and "<script" not in html
    assert "informed=3" in html  # the stakes used are part of the report


def test_bundled_build_writes_the_report_in_the_home(home: Path) -> None:
    build(home, "--source", "bundled", "--until", "1999-12-31")
    result = runner.invoke(app, ["fund", "backtest", "v", "--rebalance-every", "4"])
    assert result.exit_code == 0, result.output
    out = home / "fund" / "v"
    for name in REPORT_FILES:
        assert (out / name).is_file(), name
    assert "only the example model" in result.output
    metrics = json.loads((out / "metrics.json").read_text())
    example = metrics["curves"]["example model"]
    assert example["config"]["rebalance_every"] == 4
    assert example["periods_per_year"] == pytest.approx(52.18 / 4, rel=0.1)
    assert "Sharpe" in result.output and "max drawdown" in result.output


def test_problems_are_named_and_exit_1(home: Path) -> None:
    result = runner.invoke(app, ["fund", "backtest", "nope"])
    assert result.exit_code == 1 and "nope" in result.output
    build(home, *SYNTHETIC)
    short = home / "short.csv"
    short.write_text("id,prediction\nn000,0.5\n")
    result = runner.invoke(app, ["fund", "backtest", "v", "--predictions", str(short)])
    assert result.exit_code == 1 and "short.csv" in result.output
    result = runner.invoke(app, ["fund", "backtest", "v", "--stake", "ghost=2"])
    assert result.exit_code == 1 and "ghost" in result.output
    result = runner.invoke(app, ["fund", "backtest", "v", "--stake", "example=lots"])
    assert result.exit_code == 1 and "lots" in result.output
    result = runner.invoke(app, ["fund", "backtest", "v", "--stake", "example=0"])
    assert result.exit_code == 1 and "no model has a stake" in result.output
    assert not (home / "fund").exists()
