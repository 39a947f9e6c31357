"""`crowdquant simulate`'s speed: rounds per second with the bots reaching the app in process
(the default) against the same run over HTTP on a loopback port (`--over-http`); with
`--cores`, on two cores (the default) against one (each tick whole, then every bot, in one
process); or, with `--against`, against another crowdquant's source (an older commit's, say).

    uv run python benchmarks/simulate_rounds.py [--rounds 20] [--stocks 1000] [--repeat 1]
        [--population realistic] [--cores | --against DIR]

Both sides run the same seed, population and rounds, one after the other, `--repeat` times
each, interleaved so both see the same load; each run's wall time includes building the
synthetic market. Prints each run's rounds/s (with `--against`, also the CPU-seconds its
processes spent a round, less sensitive to how busy the machine is), the medians and their
ratio, and checks that both sides wrote the same report (a run's failed steps are printed:
they make reports differ). `--against DIR` runs each side in a process of its own, in
process, with `DIR/src` (e.g. `git archive main src | tar -x -C DIR`) or this tree's `src`
first on the path. Not a test: figures vary by machine.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

from crowdquant.db.enums import Cadence
from crowdquant.simulate.populations import DEFAULT_POPULATION, POPULATIONS

simulate_cli = importlib.import_module("crowdquant.cli.simulate")


def run(
    rounds: int, stocks: int, population: str, folder: Path, **options: bool
) -> tuple[float, str]:
    """One run's rounds/s and its report's text; `options` go to `run_simulation`."""
    record, report = simulate_cli.run_simulation(
        folder / "home",
        folder / "report",
        rounds=rounds,
        population=POPULATIONS[population],
        cadence=Cadence.DAILY,
        payout_rule={},
        stocks=stocks,
        seed=1,
        stake=Decimal(100),
        **options,
    )
    return record.rounds_run / record.seconds, Path(report).read_text()


SOURCE = Path(__file__).resolve().parents[1] / "src"
ONE_RUN = """
import json, logging, sys, tempfile
from pathlib import Path
logging.disable(logging.WARNING)
sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])
from simulate_rounds import run
with tempfile.TemporaryDirectory(prefix="cq-bench-") as folder:
    speed, text = run(int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], Path(folder))
print("\\n" + json.dumps({"speed": speed, "report": text}))
"""


def run_elsewhere(
    source: Path, rounds: int, stocks: int, population: str
) -> tuple[float, float, str]:
    """One in-process run with `source` (a crowdquant `src` folder) first on the path, in a
    process of its own; its rounds/s, the CPU-seconds its processes spent a round (the
    market's and the players' included), and its report's text."""
    here = str(Path(__file__).resolve().parent)
    environment = {**os.environ, "PYTHONPATH": str(source)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(
        [sys.executable, "-c", ONE_RUN, here, str(source), str(rounds), str(stocks), population],
        env=environment,
        capture_output=True,
        text=True,
        check=True,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    *said, last = done.stdout.strip().splitlines()
    for line in said:  # what went wrong in the run (a step that failed), for the reader
        if "could not" in line:
            print(f"  {line.strip()}", flush=True)
    answer = json.loads(last)
    return float(answer["speed"]), cpu / rounds, str(answer["report"])


def against(args: argparse.Namespace) -> None:
    """This tree's rounds/s and CPU-seconds a round against the tree at `args.against`, in
    process."""
    sides = {"this tree": SOURCE, "reference": Path(args.against).resolve() / "src"}
    speeds: dict[str, list[float]] = {side: [] for side in sides}
    cpus: dict[str, list[float]] = {side: [] for side in sides}
    reports: set[str] = set()
    for attempt in range(args.repeat):
        for side, source in sides.items():
            speed, cpu, text = run_elsewhere(source, args.rounds, args.stocks, args.population)
            speeds[side].append(speed)
            cpus[side].append(cpu)
            reports.add(text)
            print(
                f"run {attempt + 1}, {side}: {speed:.3f} rounds/s, {cpu:.2f} CPU-s a round",
                flush=True,
            )
    mine, reference = (statistics.median(speeds[side]) for side in sides)
    my_cpu, reference_cpu = (statistics.median(cpus[side]) for side in sides)
    print(f"{args.rounds} rounds of the {args.population} population, {args.stocks} stocks")
    print(f"this tree: {mine:.3f} rounds/s, {my_cpu:.2f} CPU-s a round (medians)")
    print(f"reference ({args.against}): {reference:.3f} rounds/s, {reference_cpu:.2f} CPU-s")
    print(
        f"ratio this tree / reference: {mine / reference:.2f}× the speed,"
        f" {my_cpu / reference_cpu:.2f}× the CPU"
    )
    print("same report on both sides:", "yes" if len(reports) == 1 else "no")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stocks", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--population", choices=list(POPULATIONS), default=DEFAULT_POPULATION)
    sides = parser.add_mutually_exclusive_group()
    sides.add_argument("--cores", action="store_true", help="two cores against one")
    sides.add_argument("--against", help="another crowdquant's tree (its src/) to compare with")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.against:
        against(args)
        return
    modes = (
        {"two cores": {"two_cores": True}, "one core": {"two_cores": False}}
        if args.cores
        else {"in process": {"over_http": False}, "over HTTP": {"over_http": True}}
    )
    speeds: dict[str, list[float]] = {mode: [] for mode in modes}
    reports: set[str] = set()
    for attempt in range(args.repeat):
        for mode, options in modes.items():
            with tempfile.TemporaryDirectory(prefix="cq-bench-") as folder:
                home = Path(folder)
                speed, text = run(args.rounds, args.stocks, args.population, home, **options)
            speeds[mode].append(speed)
            reports.add(text)
            print(f"run {attempt + 1}, {mode}: {speed:.3f} rounds/s", flush=True)
    first, second = modes
    mine, reference = (statistics.median(speeds[mode]) for mode in modes)
    print(f"{args.rounds} rounds of the {args.population} population, {args.stocks} stocks")
    print(f"{first}: {mine:.3f} rounds/s (median)")
    print(f"{second}: {reference:.3f} rounds/s (median)")
    print(f"ratio {first} / {second}: {mine / reference:.2f}×")
    print("same report in both modes:", "yes" if len(reports) == 1 else "no")


if __name__ == "__main__":
    main()
