"""Runs one uploaded model inside the sandbox; never imported by the server.

``python -I sandbox_runner.py MODEL LIVE BENCHMARKS OUT``, with the run's exit token on
standard input. In order: read the token, check that the network is unreachable, refuse
any further network call (an audit hook, which also records the attempt), unpickle the
model, call ``predict(live_features[, live_benchmark_models])``, write its predictions to
``OUT/predictions.parquet`` (columns ``id``, ``prediction``), and last write
``OUT/result.json`` holding the token. The host believes only a result carrying the token,
so user code that exits early cannot pass for a finished run. (The token is in this
process's memory, so code that searches it could finish its own run; what it writes is
still validated as any submission.)

It imports only the standard library and the runtime's own packages (pandas, pyarrow).
"""

from __future__ import annotations

import errno
import inspect
import json
import os
import pickle
import socket
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.sendto",
        "socket.sendmsg",
    }
)
"""Audit events that reach for the network."""
PROBE_ADDRESSES = (("1.1.1.1", 443), ("8.8.8.8", 53))


def network_reachable() -> str | None:
    """What of the network the sandbox can see (an interface, a route out), or None."""
    interfaces = [name for _, name in socket.if_nameindex() if name != "lo"]
    if interfaces:
        return f"network interfaces {interfaces}"
    for address in PROBE_ADDRESSES:
        try:
            with socket.create_connection(address, timeout=1):
                return f"a connection to {address[0]}:{address[1]}"
        except OSError:
            continue
    return None


def _tail(exc: BaseException, lines: int = 8) -> str:
    text = "".join(traceback.format_exception(exc)).rstrip().splitlines()
    return "\n".join(text[-lines:])


def main(argv: list[str]) -> None:
    token = sys.stdin.readline().strip()
    sys.stdin.close()
    model_path, live_path, benchmarks_path, out = argv[1], argv[2], argv[3], Path(argv[4])
    runner_pid = os.getpid()
    network_tries: list[str] = []

    def finish(status: str, reason: str = "", message: str = "") -> NoReturn:
        if os.getpid() != runner_pid:  # a process the model forked
            os._exit(1)
        if network_tries and status != "error":
            status, reason = "failed", "network"
            message = f"the model tried to reach the network ({network_tries[0]})"
        result = {"token": token, "status": status, "reason": reason, "message": message}
        (out / "result.json").write_text(json.dumps(result))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

    found = network_reachable()
    if found is not None:
        finish("error", "network_reachable", f"the sandbox can reach the network: {found}")

    def refuse_network(event: str, args: tuple[Any, ...]) -> None:
        if event in NETWORK_EVENTS:
            if not network_tries:
                os.write(2, f"sandbox: refused {event}{args!r:.200}\n".encode())
            network_tries.append(f"{event} {args!r:.200}")
            raise PermissionError(errno.EACCES, "no network in the sandbox")

    sys.addaudithook(refuse_network)

    python = f"Python {sys.version_info.major}.{sys.version_info.minor}"
    try:
        with open(model_path, "rb") as file:
            predict = pickle.load(file)
    except MemoryError:
        finish("failed", "out_of_memory", "the model ran out of memory while unpickling")
    except ImportError as exc:
        finish("failed", "import_error", f"{exc} (this runtime: {python})")
    except SystemExit:
        finish("failed", "exited_early", "the model exited while unpickling")
    except BaseException as exc:
        finish(
            "failed",
            "cannot_unpickle",
            f"cannot unpickle the model under {python}: {type(exc).__name__}: {exc}",
        )
    if not callable(predict):
        finish("failed", "cannot_unpickle", f"the pickle holds a {type(predict).__name__}")

    import pandas as pd

    live = pd.read_parquet(live_path)
    benchmarks = pd.read_parquet(benchmarks_path) if benchmarks_path else pd.DataFrame()
    try:
        takes_one = len(inspect.signature(predict).parameters) == 1
    except (TypeError, ValueError):
        takes_one = False
    try:
        result = predict(live) if takes_one else predict(live, benchmarks)
    except MemoryError:
        finish("failed", "out_of_memory", "the model ran out of memory")
    except BlockingIOError as exc:
        finish("failed", "too_many_processes", f"the model hit the process limit: {exc}")
    except SystemExit:
        finish("failed", "exited_early", "the model exited before predict returned")
    except BaseException as exc:
        finish("failed", "predict_error", f"predict raised an error:\n{_tail(exc)}")
    finish(*_write_predictions(result, live.index, out))


def _write_predictions(result: object, live_index: Any, out: Path) -> tuple[str, str, str]:
    import pandas as pd

    if isinstance(result, pd.Series):
        result = result.rename("prediction").to_frame()
    if not isinstance(result, pd.DataFrame):
        return "failed", "invalid_output", f"predict returned a {type(result).__name__}"
    if "prediction" not in result.columns:
        columns = [str(column) for column in result.columns[:5]]
        return "failed", "invalid_output", f"no 'prediction' column (columns: {columns})"
    if result.empty:
        return "failed", "invalid_output", "predict returned no rows"
    frame = pd.DataFrame(
        {
            "id": result.index.astype(str),
            "prediction": pd.to_numeric(result["prediction"], errors="coerce").to_numpy(),
        }
    )
    try:
        frame.to_parquet(out / "predictions.parquet", index=False)
    except OSError as exc:
        return "failed", "invalid_output", f"cannot write the predictions: {exc}"
    return "ok", "", f"{len(frame)} predictions for {len(live_index)} live rows"


if __name__ == "__main__":
    main(sys.argv)
