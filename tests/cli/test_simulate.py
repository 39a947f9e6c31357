"""`crowdquant simulate`'s refusals, before anything is built: the run itself is covered end to
end by tests/simulate/test_simulation.py."""

from __future__ import annotations

from pathlib import Path

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
