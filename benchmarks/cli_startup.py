"""CLI start-up: `crowdquant --help` and every command's `--help` against `python -c pass`.

    uv run python benchmarks/cli_startup.py [--repeat 5]

Each command runs as a real subprocess, `--repeat` times, interleaved with the reference
`python -c pass` so both see the same load; it prints the minimum and median wall time and
the median's ratio to the reference's. Two conditions: "cached", as Python runs by default
(bytecode written into an empty PYTHONPYCACHEPREFIX on a first, unmeasured run, read after),
and "as set", with this process's environment untouched (with PYTHONDONTWRITEBYTECODE=1 and
an environment installed without `--compile-bytecode`, every library is compiled from source
at every start). Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import typer.main

from crowdquant.cli import app

REFERENCE = "python -c pass"


def command_paths(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command and group under `command`, itself first."""
    yield path
    for name, sub in getattr(command, "commands", {}).items():
        yield from command_paths(sub, (*path, name))


def runs() -> dict[str, list[str]]:
    """Label → argv: the reference, the import, and every `--help`."""
    python = sys.executable
    script = str(Path(python).with_name("crowdquant"))
    found = {REFERENCE: [python, "-c", "pass"]}
    found['python -c "import crowdquant.cli"'] = [python, "-c", "import crowdquant.cli"]
    for path in command_paths(typer.main.get_command(app)):
        found[" ".join(("crowdquant", *path, "--help"))] = [script, *path, "--help"]
    return found


def seconds(argv: Sequence[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def measure(commands: dict[str, list[str]], env: dict[str, str], repeat: int) -> None:
    for argv in commands.values():  # warm the file cache (and the bytecode cache if written)
        seconds(argv, env)
    times: dict[str, list[float]] = {label: [] for label in commands}
    for _ in range(repeat):
        for label, argv in commands.items():
            times[label].append(seconds(argv, env))
    reference = statistics.median(times[REFERENCE])
    width = max(map(len, commands))
    print(f"{'command':<{width}}  {'min ms':>7}  {'median ms':>9}  {'× pass':>7}")
    for label, measured in times.items():
        median = statistics.median(measured)
        print(
            f"{label:<{width}}  {min(measured) * 1000:7.0f}  {median * 1000:9.0f}"
            f"  {median / reference:7.1f}"
        )
    slowest = max(
        (statistics.median(t), label) for label, t in times.items() if label.endswith("--help")
    )
    print(f"slowest --help: {slowest[1]} at {slowest[0] * 1000:.0f} ms (median)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs of each command")
    args = parser.parse_args()
    commands = runs()
    settings = {
        name: os.environ.get(name, "unset")
        for name in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")
    }
    for condition in ("cached", "as set"):
        with tempfile.TemporaryDirectory(prefix="crowdquant-pycache-") as cache:
            env = {**os.environ, "COLUMNS": "100"}
            if condition == "cached":
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                env["PYTHONPYCACHEPREFIX"] = cache
                title = "bytecode cached"
            else:
                title = ", ".join(f"{name}={value}" for name, value in settings.items())
            print(f"\n== {condition} ({title}), {args.repeat} runs each")
            measure(commands, env, args.repeat)


if __name__ == "__main__":
    main()
