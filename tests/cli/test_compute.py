"""`crowdquant compute worker`: runs the waiting jobs of uploaded models."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app


def test_a_worker_run_once_says_how_many_jobs_it_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))

    result = CliRunner().invoke(app, ["compute", "worker", "--once"])

    assert result.exit_code == 0, result.output
    assert "ran 0 jobs" in result.output
