"""The Python environments uploaded models run in.

The default runtime is the server's own environment (numpy, pandas, scikit-learn, LightGBM,
cloudpickle, ...), recorded by the hash of the lock file it was installed from, so each job
says what it ran under. Named runtimes built from lock files of their own can sit beside it
later; a job only needs a runtime's name, its lock hash and the paths the sandbox shows.
"""

from __future__ import annotations

import hashlib
import os
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

DEFAULT_RUNTIME = "default"
LOCK_FILE = Path(__file__).resolve().parents[3] / "uv.lock"
"""The project's lock file, where the server runs from a checkout."""


@dataclass(frozen=True)
class Runtime:
    """A Python environment a model runs in, read-only inside the sandbox."""

    name: str
    python: Path
    """The interpreter, as the sandbox calls it."""
    prefixes: tuple[Path, ...]
    """Directories the interpreter needs (the environment and its base installation)."""
    lock_hash: str
    """``sha256:<hex>`` of the lock file the environment was installed from."""
    python_version: str


def lock_hash(lock_file: Path = LOCK_FILE) -> str:
    """The lock file's hash, or, without one (an installed package), the hash of the
    environment's distribution names and versions."""
    if lock_file.is_file():
        return "sha256:" + hashlib.sha256(lock_file.read_bytes()).hexdigest()
    installed = sorted(
        f"{dist.metadata['Name']}=={dist.version}" for dist in metadata.distributions()
    )
    return "sha256:" + hashlib.sha256("\n".join(installed).encode()).hexdigest()


def default_runtime(lock_file: Path = LOCK_FILE) -> Runtime:
    """The server's own environment."""
    prefixes = dict.fromkeys(Path(os.path.realpath(p)) for p in (sys.prefix, sys.base_prefix))
    return Runtime(
        name=DEFAULT_RUNTIME,
        python=Path(sys.prefix) / "bin" / "python",
        prefixes=tuple(prefixes),
        lock_hash=lock_hash(lock_file),
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )
