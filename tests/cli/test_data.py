"""`crowdquant data …` end to end, as an operator types it."""

from __future__ import annotations

import importlib
import io
import json
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from crowdquant.cli import app

runner = CliRunner()
cli_data = importlib.import_module("crowdquant.cli.data")
SMALL = ["--source", "synthetic", "--stocks", "60", "--weeks", "110", "--seed", "2"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path))
    return tmp_path


def test_build_audit_and_export(home: Path) -> None:
    result = runner.invoke(app, ["data", "build", *SMALL, "--version", "small"])
    assert result.exit_code == 0, result.output
    assert "dataset version small" in result.output and "validation" in result.output
    assert (home / "datasets" / "small" / "manifest.json").is_file()
    assert (home / "operator" / "keys.json").is_file()

    result = runner.invoke(app, ["data", "audit", "small", "--out", str(home / "audit")])
    assert result.exit_code == 0, result.output
    report = json.loads((home / "audit" / "audit.json").read_text())
    assert "gate" in report

    out = home / "legacy.csv"
    result = runner.invoke(app, ["data", "export-legacy", "small", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_csv(out, nrows=5).columns[:3].tolist() == ["id", "era", "data_type"]


def test_bad_panel_is_a_clear_error_and_writes_nothing(home: Path) -> None:
    bad = home / "prices.csv"
    bad.write_text("date,ticker\n2020-01-03,AAA\n")
    result = runner.invoke(app, ["data", "build", "--source", "file", "--path", str(bad)])
    assert result.exit_code == 1
    assert "missing" in result.output and "close" in result.output
    assert not (home / "datasets").exists() or not any((home / "datasets").iterdir())


def test_unknown_version_is_named(home: Path) -> None:
    result = runner.invoke(app, ["data", "export-legacy", "nope"])
    assert result.exit_code == 1 and "nope" in result.output


def test_gate_refuses_an_easily_reidentified_build(home: Path) -> None:
    result = runner.invoke(
        app, ["data", "build", *SMALL, "--gate", "--max-reidentification", "0.0"]
    )
    assert result.exit_code == 1
    assert "re-identification" in result.output and "no version was written" in result.output
    assert not (home / "datasets").exists() or not any((home / "datasets").iterdir())


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--source", "synthetic", "--stocks", "0"], "n_stocks"),
        (["--source", "nowhere"], "unknown source"),
        (["--source", "file"], "--path is required"),
        (["--config", "missing.json"], "missing.json"),
        (["--until", "not-a-date"], "not-a-date"),
    ],
)
def test_bad_options_are_named(home: Path, args: list[str], words: str) -> None:
    result = runner.invoke(app, ["data", "build", *args])
    assert result.exit_code == 1
    assert words in result.output
    assert not (home / "datasets").exists()


@pytest.mark.parametrize("terminal", [False, True])
def test_the_progress_bar_shows_what_runs_on_a_terminal_only(
    monkeypatch: pytest.MonkeyPatch, terminal: bool
) -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=terminal, width=100)
    monkeypatch.setattr(cli_data, "console", console)
    with cli_data.progress_reporter(16, "leakage audit") as report:
        report("re-identification", 2, 6)
    shown = out.getvalue()
    if terminal:
        assert "re-identification" in shown and "2/6" in shown
    else:
        assert shown == ""  # piped output and tests stay clean


def test_the_operator_chooses_the_main_target(home: Path) -> None:
    options = ["data", "build", *SMALL, "--version", "v5.3", "--main-target"]
    result = runner.invoke(app, [*options, "target_victor_20"])
    assert result.exit_code == 0, result.output
    assert "benchmark model on target_victor_20" in result.output
    train = pd.read_parquet(home / "datasets" / "v5.3" / "train.parquet")
    assert train["target"].equals(train["target_victor_20"])
    assert not train["target"].equals(train["target_ender_20"])
    benchmarks = pd.read_parquet(home / "datasets" / "v5.3" / "validation_benchmark_models.parquet")
    assert "v53_lgbm_victor20" in benchmarks.columns

    result = runner.invoke(app, [*options, "target_nobody_20"])
    assert result.exit_code == 1 and "target_nobody_20" in result.output
