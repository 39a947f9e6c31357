"""`crowdquant compute worker` runs the waiting jobs of uploaded models; `compute runtime`
builds and lists the runtimes they run under."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crowdquant.cli import app
from crowdquant.compute.runtime import lock_hash

TEST_RUNTIMES = Path(__file__).parents[1] / "compute" / "runtimes"


def test_a_worker_run_once_says_how_many_jobs_it_ran(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))

    result = CliRunner().invoke(app, ["compute", "worker", "--once"])

    assert result.exit_code == 0, result.output
    assert "ran 0 jobs" in result.output


def test_a_runtime_is_built_from_its_lock_and_listed_with_its_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CROWDQUANT_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("crowdquant.compute.runtime.SHIPPED", TEST_RUNTIMES)
    runner = CliRunner()

    before = runner.invoke(app, ["compute", "runtime", "list"])
    built = runner.invoke(app, ["compute", "runtime", "build", "tiny"])
    after = runner.invoke(app, ["compute", "runtime", "list"])
    unknown = runner.invoke(app, ["compute", "runtime", "build", "py27"])

    wanted = lock_hash(TEST_RUNTIMES / "tiny" / "uv.lock")
    assert "tiny: the runtime 'tiny' is not built" in before.output
    assert built.exit_code == 0, built.output
    assert f"built tiny: Python 3.11, {wanted}" in built.output
    assert f"tiny: Python 3.11, {wanted}" in after.output
    assert "default: Python" in after.output
    venv_python = tmp_path / "home" / "runtimes" / "tiny" / "venv" / "bin" / "python"
    imported = subprocess.run(
        [venv_python, "-c", "import cloudpickle, numpy, pandas, pyarrow"], check=False
    )
    assert imported.returncode == 0
    assert unknown.exit_code == 1 and "unknown runtime 'py27'" in unknown.output
