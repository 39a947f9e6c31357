"""`crowdquant webhooks worker`: sends the due webhook deliveries."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app


def test_a_worker_run_once_says_how_many_deliveries_it_tried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))

    result = CliRunner().invoke(app, ["webhooks", "worker", "--once"])

    assert result.exit_code == 0, result.output
    assert "tried 0 deliveries" in result.output
