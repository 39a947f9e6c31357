"""A throwaway EVM node on loopback: Foundry's anvil (for tests, benchmarks and demos)."""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ANVIL_CHAIN_ID = 31337


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_node(
    binary: str | Path, *, start_timeout: float = 20.0, timestamp: int | None = None
) -> Iterator[str]:
    """Start `binary` (anvil) on a free loopback port, its genesis block at `timestamp` (Unix
    seconds; default now); its JSON-RPC URL while the block runs. The node is stopped by
    its process id afterwards."""
    from web3 import Web3

    port = _free_port()
    genesis = [] if timestamp is None else ["--timestamp", str(timestamp)]
    process = subprocess.Popen(
        [str(binary), "--host", "127.0.0.1", "--port", str(port), "--silent", *genesis],
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    w3 = Web3(Web3.HTTPProvider(url, request_kwargs={"timeout": 5}))
    deadline = time.monotonic() + start_timeout
    try:
        while True:
            try:
                if w3.eth.chain_id == ANVIL_CHAIN_ID:
                    break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"anvil ({binary}) did not start on {url}")
            time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(10)
