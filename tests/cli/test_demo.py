"""The README's main command: build the bundled dataset once, then show it."""

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app


def test_demo_builds_the_bundled_dataset_then_reuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path))
    runner = CliRunner()
    first = runner.invoke(app, ["demo"])
    assert first.exit_code == 0, first.output
    assert "20 stocks" in first.output and "live" in first.output
    manifest = tmp_path / "datasets" / "bundled-demo" / "manifest.json"
    built_at = manifest.stat().st_mtime_ns
    second = runner.invoke(app, ["demo"])
    assert second.exit_code == 0 and "already built" in second.output
    assert manifest.stat().st_mtime_ns == built_at
