"""The CLI starts light: `--help` loads no data, web or database library, and says the same."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import typer.main
from typer.testing import CliRunner

from crowdquant.cli import app

# what the commands load when they run, never for their help
HEAVY = (
    "pandas",
    "numpy",
    "sklearn",
    "scipy",
    "pyarrow",
    "matplotlib",
    "dask",
    "fastapi",
    "starlette",
    "uvicorn",
    "ariadne",
    "jinja2",
    "httpx",
    "numerapi",
    "sqlalchemy",
    "alembic",
    "boto3",
    "argon2",
    "pydantic_settings",
    "crowdquant.settings",
    "crowdquant.data",
    "crowdquant.server",
    "crowdquant.tournament",
)
ENV = {"COLUMNS": "100", "TERM": "dumb"}

# In a fresh interpreter: import the CLI, then show every command's help; print the modules
# loaded after each step and the help texts.
FRESH = """
import json, sys
import typer.main
from typer.testing import CliRunner
from crowdquant.cli import app

def paths(command, path=()):
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from paths(sub, (*path, name))

after_import = sorted(sys.modules)
runner = CliRunner()
helps = {}
for path in paths(typer.main.get_command(app)):
    result = runner.invoke(app, [*path, "--help"], env=json.loads(sys.argv[1]))
    helps[" ".join(path)] = [result.exit_code, result.output]
print(json.dumps({"after_import": after_import, "after_help": sorted(sys.modules), "helps": helps}))
"""


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def in_fresh_interpreter() -> dict[str, Any]:
    run = subprocess.run(
        [sys.executable, "-c", FRESH, json.dumps(ENV)],
        capture_output=True,
        text=True,
        check=True,
    )
    found: dict[str, Any] = json.loads(run.stdout)
    return found


def heavy_modules(names: list[str]) -> list[str]:
    """The loaded modules in HEAVY or inside one of them."""
    return [name for name in names if any(name == h or name.startswith(h + ".") for h in HEAVY)]


def test_help_loads_no_heavy_module_and_says_what_a_fully_loaded_cli_says() -> None:
    fresh = in_fresh_interpreter()
    assert heavy_modules(fresh["after_import"]) == []
    assert heavy_modules(fresh["after_help"]) == []

    # here everything the commands run is loaded: the help must not depend on it
    import crowdquant.cli.fund_backtest
    import crowdquant.server.serve
    import crowdquant.simulate.bots  # noqa: F401

    runner = CliRunner()
    paths = [" ".join(path) for path in command_paths(typer.main.get_command(app))]
    assert {"", "round", "round open", "data build", "fund backtest", "demo"} <= set(paths)
    assert sorted(fresh["helps"]) == sorted(paths)
    for path in paths:
        expected = runner.invoke(app, [*path.split(), "--help"], env=ENV)
        code, output = fresh["helps"][path]
        assert (code, expected.exit_code) == (0, 0), path
        assert output == expected.output, path
        assert "Usage:" in output


def test_the_installed_command_shows_the_same_help() -> None:
    script = Path(sys.executable).with_name("crowdquant")
    shown = subprocess.run(
        [str(script), "round", "open", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **ENV},
    ).stdout
    expected = CliRunner().invoke(app, ["round", "open", "--help"], env=ENV, prog_name="crowdquant")
    assert shown == expected.output
    assert "--tournament" in shown and "--now" in shown


def test_defaults_kept_in_the_cli_match_their_sources() -> None:
    """Two defaults are written out in the CLI so that its help imports nothing heavy."""
    from crowdquant.cli.data import DEFAULT_MAX_REIDENTIFICATION
    from crowdquant.cli.simulate import DEFAULT_POPULATION
    from crowdquant.data.audit import DEFAULT_THRESHOLD
    from crowdquant.simulate import populations

    assert DEFAULT_MAX_REIDENTIFICATION == DEFAULT_THRESHOLD
    assert populations.DEFAULT_POPULATION == DEFAULT_POPULATION
