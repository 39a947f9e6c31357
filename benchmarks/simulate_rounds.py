"""`crowdquant simulate`'s speed: rounds per second with the bots reaching the app in process
(the default) against the same run over HTTP on a loopback port (`--over-http`).

    uv run python benchmarks/simulate_rounds.py [--rounds 20] [--stocks 100] [--repeat 1]
        [--population realistic]

Both modes run the same seed, population and rounds, one after the other, `--repeat` times
each, interleaved so both see the same load; each run's wall time includes building the
synthetic market. Prints each run's rounds/s, the medians and their ratio (in process ÷
over HTTP), and checks that both modes wrote the same report. Not a test: figures vary by
machine.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import statistics
import tempfile
from decimal import Decimal
from pathlib import Path

from crowdquant.db.enums import Cadence
from crowdquant.simulate.populations import DEFAULT_POPULATION, POPULATIONS

simulate_cli = importlib.import_module("crowdquant.cli.simulate")


def run(
    rounds: int, stocks: int, population: str, over_http: bool, folder: Path
) -> tuple[float, str]:
    """One run's rounds/s and its report's text."""
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
        over_http=over_http,
    )
    return record.rounds_run / record.seconds, Path(report).read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--stocks", type=int, default=100)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--population", choices=list(POPULATIONS), default=DEFAULT_POPULATION)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    speeds: dict[str, list[float]] = {"in process": [], "over HTTP": []}
    reports: set[str] = set()
    for attempt in range(args.repeat):
        for mode, over_http in (("in process", False), ("over HTTP", True)):
            with tempfile.TemporaryDirectory(prefix="cq-bench-") as folder:
                home = Path(folder)
                speed, text = run(args.rounds, args.stocks, args.population, over_http, home)
            speeds[mode].append(speed)
            reports.add(text)
            print(f"run {attempt + 1}, {mode}: {speed:.3f} rounds/s", flush=True)
    in_process, over_http = (statistics.median(speeds[mode]) for mode in speeds)
    print(f"{args.rounds} rounds of the {args.population} population, {args.stocks} stocks")
    print(f"in process: {in_process:.3f} rounds/s (median)")
    print(f"over HTTP:  {over_http:.3f} rounds/s (median)")
    print(f"ratio in process / over HTTP: {in_process / over_http:.2f}×")
    print("same report in both modes:", "yes" if len(reports) == 1 else "no")


if __name__ == "__main__":
    main()
