"""A throwaway EVM node on loopback: Foundry's anvil (for tests, benchmarks and demos)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

ANVIL_CHAIN_ID = 31337
ANVIL_ENV = "CROWDQUANT_ANVIL"
INSTALLED_ANVIL = Path(".evm-node") / "node_modules" / ".bin" / "anvil"
"""Where `scripts/check` installs anvil, under the project's root."""
INSTALL_ANVIL = "npm install --prefix .evm-node @foundry-rs/anvil-linux-amd64@1.7.1"
"""The command that installs it there (npm's package of Foundry's prebuilt binary)."""
ANVIL_DEV_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
"""anvil's first development account's well-known key (funded and unlocked on every anvil;
for a local node only)."""


def anvil_binary() -> Path:
    """The anvil to run: `CROWDQUANT_ANVIL`, else the one installed under the working
    directory or the project's root, else one on the PATH; where none is, the path looked
    at first (check it with `is_file`)."""
    named = os.environ.get(ANVIL_ENV)
    if named:
        return Path(named)
    project = Path(__file__).resolve().parents[4]
    for candidate in (Path.cwd() / INSTALLED_ANVIL, project / INSTALLED_ANVIL):
        if candidate.is_file():
            return candidate
    on_path = shutil.which("anvil")
    return Path(on_path) if on_path else Path.cwd() / INSTALLED_ANVIL


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def local_node(
    binary: str | Path,
    *,
    start_timeout: float = 20.0,
    arguments: Sequence[str] = (),
    timestamp: int | None = None,
) -> Iterator[str]:
    """Start `binary` (anvil) on a free loopback port, with `arguments` too, its genesis block
    at `timestamp` (Unix seconds; default now); its JSON-RPC URL while the block runs. The
    node is stopped by its process id afterwards."""
    from web3 import Web3

    port = _free_port()
    genesis = [] if timestamp is None else ["--timestamp", str(timestamp)]
    process = subprocess.Popen(
        [
            str(binary),
            *("--host", "127.0.0.1", "--port", str(port), "--silent"),
            *genesis,
            *arguments,
        ],
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
