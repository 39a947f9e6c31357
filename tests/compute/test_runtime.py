"""The default runtime is the server's own environment, named by its lock file's hash."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from crowdquant.compute.runtime import DEFAULT_RUNTIME, LOCK_FILE, default_runtime, lock_hash


def test_the_default_runtime_is_this_environment_recorded_by_its_lock_hash() -> None:
    runtime = default_runtime()

    assert runtime.name == DEFAULT_RUNTIME
    assert runtime.lock_hash == "sha256:" + hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()
    assert runtime.python_version == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert Path(sys.prefix).resolve() in runtime.prefixes
    assert runtime.python.exists()


def test_a_changed_lock_file_is_another_runtime(tmp_path: Path) -> None:
    lock = tmp_path / "uv.lock"
    lock.write_text("version = 1\n")
    before = lock_hash(lock)
    lock.write_text("version = 2\n")

    assert lock_hash(lock) != before
    assert lock_hash(tmp_path / "missing.lock").startswith("sha256:")
