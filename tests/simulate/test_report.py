"""The simulation report: its files, its tables' figures, and its all-or-nothing writing."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdquant.simulate import report
from crowdquant.simulate.checks import run_checks
from crowdquant.simulate.record import SimulationRecord
from crowdquant.simulate.report import (
    COMPARISON_PLOTS,
    PLOTS,
    archetype_table,
    fund_stats,
    summary_lines,
    write_comparison,
    write_report,
)
from tests.simulate.test_checks import synthetic_record

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def record() -> SimulationRecord:
    return synthetic_record(60, omit=("copier",))


@pytest.fixture(scope="module")
def written(record: SimulationRecord, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The report of `record`, written to <tmp>/run/report."""
    return write_report(record, tmp_path_factory.mktemp("run") / "report")


def test_write_report_writes_the_markdown_and_four_plots(written: Path) -> None:
    path = written
    assert path.name == "report.md" and path.parent.name == "report"
    assert sorted(p.name for p in path.parent.iterdir()) == sorted([*PLOTS, "report.md"])
    for name in PLOTS:
        assert (path.parent / name).read_bytes().startswith(PNG)
    assert [p.name for p in path.parent.parent.iterdir()] == ["report"]  # no staging left
    text = path.read_text()
    headings = ["# Simulation report", "## NMR by archetype", "## Payouts", "## Mechanism checks"]
    for heading in [*headings, "## Meta model and fund"]:
        assert heading in text
    assert "- Payout rule: classic-v2" in text and "- Rounds: 65 run, 60 resolved" in text
    assert "- Models: 13 (boosting 1, example 1, latecomer 1, linear 1, spammer 5, sybil 4)" in text
    for name in PLOTS:
        assert f"]({name})" in text


def test_the_report_holds_each_checks_figures(record: SimulationRecord, written: Path) -> None:
    text = written.read_text()
    for check in run_checks(record):
        row = next(line for line in text.splitlines() if line.startswith(f"| {check.name} |"))
        assert check.verdict in row and f"{check.n} {check.unit}" in row
        if check.decided:
            assert f"{check.estimate:.4g}" in row
            assert f"[{check.low:.4g}, {check.high:.4g}]" in row
    assert "| copier_mmc_near_zero |" in text and "not run: no copier in the population" in text
    assert "circular block bootstrap, blocks of 20 consecutive rounds" in text
    assert "Clopper–Pearson" in text
    # 5 spammers of 10 NMR beside 400 NMR of others (no copier): never down to a tenth
    assert (
        "Burn-down: spam stake 11% of the stake at risk in the first round, never down to 10%"
        " (lowest 11.1%, round 1): the meta model is not judged." in text
    )


def test_summary_lines(record: SimulationRecord) -> None:
    checks = run_checks(record)
    lines = summary_lines(record, checks)
    assert lines[0] == (
        "classic-v2, daily: 60 of 65 rounds resolved, 13 models, 12.5 s (5.2 rounds/s)"
    )
    assert lines[1].startswith("NMR paid ")
    assert lines[2].endswith(
        "never down to 10% (lowest 11.1%, round 1): the meta model is not judged"
    )
    by_name = {line.split(":")[0]: line for line in lines[3:]}
    spam = by_name["spammers_lose"]
    assert spam.startswith(
        "spammers_lose: spammers' payout per NMR at risk per round, with their CORR as control:"
        " -0.0"
    )
    assert ", 60 rounds — holds (β = " in spam and "; plain mean -0.0" in spam
    assert by_name["copier_mmc_near_zero"].endswith("not run: no copier in the population")
    assert "0 of 60 late rows staked or paid" in by_name["late_never_staked"]
    assert lines == summary_lines(record)


def test_archetype_table_sums_the_payouts() -> None:
    record = synthetic_record(5)
    rows = record.results.assign(kind=record.results["model_id"].str.split("-").str[1])
    spam = rows[rows["kind"] == "spam"]
    table = archetype_table(record)
    assert list(table.index)[-1] == "all"
    assert table.loc["spammer", "models"] == 5
    assert table.loc["spammer", "at_risk"] == pytest.approx(5 * 5 * 10.0)
    assert table.loc["spammer", "net"] == pytest.approx(spam["payout"].sum())
    assert table.loc["spammer", "paid"] - table.loc["spammer", "burned"] == pytest.approx(
        spam["payout"].sum()
    )
    assert table.loc["all", "paid"] == pytest.approx(record.rounds["paid"].sum())
    assert table.loc["all", "burned"] == pytest.approx(record.rounds["burned"].sum())
    assert table.loc["latecomer", "at_risk"] == 0


def test_fund_stats() -> None:
    fund = pd.DataFrame(
        {"date": pd.bdate_range("2024-01-01", periods=3), "equity": [1.1, 0.99, 1.2]}
    )
    stats = fund_stats(fund)
    assert stats is not None and stats.days == 3
    assert stats.total_return == pytest.approx(0.2)
    assert stats.max_drawdown == pytest.approx(0.1)
    returns = np.array([0.1, 0.99 / 1.1 - 1, 1.2 / 0.99 - 1])
    assert stats.volatility == pytest.approx(returns.std(ddof=1) * np.sqrt(252))
    assert fund_stats(fund.iloc[:0]) is None
    one_day = fund_stats(fund.iloc[:1])
    assert one_day is not None and np.isnan(one_day.volatility) and one_day.max_drawdown == 0


def test_no_fund_books(tmp_path: Path) -> None:
    text = write_report(synthetic_record(10, fund=False), tmp_path).read_text()
    assert "No fund books." in text
    assert (tmp_path / "fund.png").read_bytes().startswith(PNG)


def test_a_record_with_no_resolved_round(tmp_path: Path) -> None:
    record = synthetic_record(0, fund=False)
    text = write_report(record, tmp_path).read_text()
    assert "- Rounds: 5 run, 0 resolved" in text and "No stake was ever at risk." in text
    assert all(not check.decided for check in run_checks(record))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([*PLOTS, "report.md"])


def test_the_same_record_gives_the_same_files(tmp_path: Path) -> None:
    record = synthetic_record(4)
    first, second = write_report(record, tmp_path / "a"), write_report(record, tmp_path / "b")
    for name in (*PLOTS, "report.md"):
        assert (first.parent / name).read_bytes() == (second.parent / name).read_bytes()


def test_a_failed_run_leaves_no_half_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "report"
    first = write_report(synthetic_record(4), out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*_: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "markdown", broken)  # fails after drawing every plot
    with pytest.raises(RuntimeError, match="boom"):
        write_report(synthetic_record(5), out)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == [first.parent.name]  # no staging left
    monkeypatch.setattr(report, "_nmr_plot", broken)  # fails before drawing any
    with pytest.raises(RuntimeError, match="boom"):
        write_report(synthetic_record(4), tmp_path / "fresh")
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_the_comparison_plots_each_archetypes_nmr_and_the_meta_corr_per_rule(
    tmp_path: Path,
) -> None:
    runs = [
        ("classic", synthetic_record(30)),
        ("mmc3", replace(synthetic_record(30, seed=1), weighting="stake_x_reputation")),
    ]
    path = write_comparison(runs, tmp_path)
    text = path.read_text()
    for name in COMPARISON_PLOTS:
        assert f"]({name})" in text
        svg = (tmp_path / name).read_text()
        assert svg.lstrip().startswith("<?xml") and "<svg" in svg
        assert ">classic<" in svg and ">mmc3<" in svg  # the legend names each rule
    nmr = (tmp_path / COMPARISON_PLOTS[0]).read_text()
    kinds = ("boosting", "copier", "example", "latecomer", "linear", "spammer", "sybil")
    assert all(f">{kind}<" in nmr for kind in kinds)  # a panel per archetype
    assert "| meta model weighting | stake | stake_x_reputation |" in text
    assert "| spam stake burned down | round 1 | round 1 |" in text
    before = {name: (tmp_path / name).read_bytes() for name in COMPARISON_PLOTS}
    write_comparison(runs, tmp_path)
    assert before == {name: (tmp_path / name).read_bytes() for name in COMPARISON_PLOTS}


def _concentrating(record: SimulationRecord) -> SimulationRecord:
    """`record` with a blend that concentrates onto one model over its rounds, its first
    round without a meta model."""
    count = len(record.rounds)
    members = np.linspace(10.0, 1.05, count)
    top = np.linspace(0.1, 0.97, count)
    members[0] = top[0] = np.nan
    return replace(record, rounds=record.rounds.assign(meta_members=members, meta_top_weight=top))


def test_the_summary_tells_how_many_models_the_meta_model_rested_on(
    record: SimulationRecord,
) -> None:
    lines = summary_lines(_concentrating(record))
    blend = next(line for line in lines if line.startswith("meta model blend: "))
    assert blend == (
        "meta model blend: 9.8 effective members (largest weight 11%) in round 2, 1.1 effective"
        " members (largest weight 97%) in round 60; fewest 1.1 effective members (largest"
        " weight 97%) in round 60"
    )
    no_meta = record.rounds.assign(meta_members=np.nan, meta_top_weight=np.nan)
    assert not any("blend" in line for line in summary_lines(replace(record, rounds=no_meta)))


def test_the_report_tables_the_meta_models_blend(record: SimulationRecord, tmp_path: Path) -> None:
    text = write_report(_concentrating(record), tmp_path / "report").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = rows.index("| Meta model blend | Effective members | Largest weight | Round |")
    # rounds 2-60 step from 10 members (10 %) down to 1.05 (97 %): round 31 is the median
    assert rows[header + 1 : header + 5] == [
        "| first | 9.85 | 11.47% | 2 |",
        "| median | 5.45 | 54.24% | all |",
        "| fewest members | 1.05 | 97.00% | 60 |",
        "| last | 1.05 | 97.00% | 60 |",
    ]
    assert "Effective members: (Σw)² ÷ Σw² of the weights" in text


def test_the_comparison_shows_each_settings_last_blend(
    record: SimulationRecord, tmp_path: Path
) -> None:
    no_meta = record.rounds.assign(meta_members=np.nan, meta_top_weight=np.nan)
    runs = [("concentrating", _concentrating(record)), ("none", replace(record, rounds=no_meta))]
    text = write_comparison(runs, tmp_path).read_text()
    assert (
        "| meta model blend, last round | 1.1 effective members (largest weight 97%) | none |"
        in text
    )
