"""`crowdquant simulate`'s refusals, before anything is built: the run itself is covered end to
end by tests/simulate/test_simulation.py."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app

runner = CliRunner()


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--population", "linear=1,trader=2"], "unknown archetype 'trader'"),
        (["--population", "linear"], "'linear': write archetype=count, e.g. linear=1"),
        (["--population", "linear=0"], "the population has no bot"),
        (["--payout-rule", "[1, 2]"], "--payout-rule is a JSON object"),
        (["--payout-rule", "{mmc: 3}"], "Expecting property name"),
        (["--payout-rule", '{"clip": "-1"}'], "clip: must be in (0, 1]"),
        (
            ["--payout-rule", '{"version": "legacy2017-v1"}'],
            "version: the bots play classic-v2 and round-stake-v1, not 'legacy2017-v1'",
        ),
        (
            ["--payout-rule", '{"version": "round-stake-v1", "stake_threshold": 5}'],
            "stake_threshold: unknown field for round-stake-v1",
        ),
        (
            ["--meta-model-weights", "stake_x_test"],
            "--meta-model-weights is one of stake, stake_x_reputation, not 'stake_x_test'",
        ),
    ],
)
def test_bad_options_are_refused_with_the_reason_and_nothing_is_written(
    tmp_path: Path, option: list[str], message: str
) -> None:
    out, keep = tmp_path / "report", tmp_path / "home"
    result = runner.invoke(
        app, ["simulate", "--rounds", "2", "--out", str(out), "--keep", str(keep), *option]
    )
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not out.exists() and not keep.exists()


@pytest.mark.parametrize(
    ("files", "options", "message"),
    [
        ({"a.json": "{}"}, ["--compare"], "--compare needs at least two rule files"),
        ({"a.json": "{}", "b.json": "{clip"}, ["--compare"], "b.json: not JSON"),
        ({"a.json": "{}", "b.json": '{"clip": "2"}'}, ["--compare"], "b.json: clip: must be in"),
        ({"a.json": "{}", "b.json": "[]"}, ["--compare"], "b.json is a JSON object"),
        ({"a.json": "{}", "b.json": "{}"}, [], "rule files are compared: write --compare"),
        (
            {"a.json": "{}", "b.json": "{}"},
            ["--compare", "--payout-rule", '{"clip": "0.1"}'],
            "not --payout-rule",
        ),
    ],
)
def test_bad_rule_files_to_compare_are_refused_before_anything_runs(
    tmp_path: Path, files: dict[str, str], options: list[str], message: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    out = tmp_path / "report"
    paths = [str(tmp_path / name) for name in files]
    result = runner.invoke(app, ["simulate", "--out", str(out), *options, *paths])
    assert result.exit_code == 1
    assert message in " ".join(result.output.split())
    assert not out.exists()


def test_compare_runs_each_rule_with_the_same_seed_and_writes_them_side_by_side(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.simulate.test_checks import synthetic_record

    simulate_cli = importlib.import_module("crowdquant.cli.simulate")

    runs: list[dict[str, Any]] = []

    def run_simulation(home: Path, out: Path, **options: Any) -> tuple[Any, Path]:
        runs.append({"home": home, "out": out, **options})
        record = synthetic_record(30, spammer_return=-0.01 * len(runs))
        return record, out / "report.md"

    monkeypatch.setattr(simulate_cli, "run_simulation", run_simulation)
    (tmp_path / "classic.json").write_text("{}")
    (tmp_path / "mmc3.json").write_text('{"mmc_multiplier": 3}')
    (tmp_path / "rounds.json").write_text('{"version": "round-stake-v1"}')
    out = tmp_path / "report"
    result = runner.invoke(
        app,
        ["simulate", "--seed", "7", "--out", str(out), "--compare"]
        + [str(tmp_path / name) for name in ("classic.json", "mmc3.json", "rounds.json")],
    )
    assert result.exit_code == 0, result.output
    rules = [{}, {"mmc_multiplier": 3}, {"version": "round-stake-v1"}]
    assert [run["payout_rule"] for run in runs] == rules
    assert {run["seed"] for run in runs} == {7} and runs[0]["population"] == runs[1]["population"]
    assert [run["out"] for run in runs] == [out / "classic", out / "mmc3", out / "rounds"]
    text = (out / "compare.md").read_text()
    header = "| figure | [classic](classic/report.md) | [mmc3](mmc3/report.md) |"
    assert f"{header} [rounds](rounds/report.md) |" in text
    spam = next(line for line in text.splitlines() if line.startswith("| spammers_lose |"))
    assert spam.count("holds: -0.0") == 3
    for plot in ("compare_nmr_by_archetype.svg", "compare_meta_corr.svg"):
        assert f"]({plot})" in text and ">classic<" in (out / plot).read_text()


@pytest.mark.parametrize(("flag", "fixed"), [([], False), (["--fixed-stakes"], True)])
def test_fixed_stakes_are_asked_of_the_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, flag: list[str], fixed: bool
) -> None:
    from tests.simulate.test_checks import synthetic_record

    simulate_cli = importlib.import_module("crowdquant.cli.simulate")
    asked: list[bool] = []

    def run_simulation(home: Path, out: Path, **options: Any) -> tuple[Any, Path]:
        asked.append(options["fixed_stakes"])
        return synthetic_record(30), out / "report.md"

    monkeypatch.setattr(simulate_cli, "run_simulation", run_simulation)
    result = runner.invoke(app, ["simulate", "--out", str(tmp_path / "report"), *flag])
    assert result.exit_code == 0, result.output
    assert asked == [fixed]
