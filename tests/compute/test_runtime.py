"""The default runtime is the server's own environment, named by its lock file's hash; named
runtimes are shipped lock files, refused until built from them."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from crowdquant.compute.runtime import (
    BUILT_HASH,
    DEFAULT_RUNTIME,
    LOCK_FILE,
    SHIPPED,
    RuntimeNotBuilt,
    RuntimeProblem,
    Runtimes,
    UnknownRuntime,
    default_runtime,
    lock_hash,
    runtime_names,
)


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


def test_named_runtimes_are_shipped_locks_and_refused_until_built(tmp_path: Path) -> None:
    assert runtime_names() == [DEFAULT_RUNTIME, "py311"]
    lock = (SHIPPED / "py311" / "uv.lock").read_text()
    for package in ("numpy", "pandas", "scikit-learn", "lightgbm", "cloudpickle", "pyarrow"):
        assert f'name = "{package}"' in lock
    runtimes = Runtimes(tmp_path)

    assert runtimes.get(DEFAULT_RUNTIME) == default_runtime()
    with pytest.raises(UnknownRuntime, match="choose one of"):
        runtimes.get("py27")
    with pytest.raises(RuntimeNotBuilt, match="run `crowdquant compute runtime build py311`"):
        runtimes.get("py311")
    (tmp_path / "py311").mkdir()
    (tmp_path / "py311" / BUILT_HASH).write_text("sha256:older\n")
    with pytest.raises(RuntimeNotBuilt, match="built from another lock"):
        runtimes.get("py311")
    with pytest.raises(RuntimeNotBuilt, match="not built"):
        Runtimes(None).get("py311")


FAKE_UV = """#!/bin/sh
# uv sync, as far as a runtime's build needs it; notes whether the current build answered meanwhile
if [ -f "$RUNTIMES/py311/lock-hash" ]; then echo current >> "$RUNTIMES/seen"; fi
mkdir -p "$UV_PROJECT_ENVIRONMENT/bin"
printf 'home = /usr/bin\\nversion_info = 3.11.9\\n' > "$UV_PROJECT_ENVIRONMENT/pyvenv.cfg"
exit "${FAIL:-0}"
"""


def test_a_build_is_swapped_in_whole_and_the_current_one_serves_until_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built_dir = tmp_path / "runtimes"
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    monkeypatch.setenv("RUNTIMES", str(built_dir))
    (built_dir / "py311" / "venv").mkdir(parents=True)  # a build from before the swaps
    (built_dir / "py311" / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    (built_dir / "py311" / BUILT_HASH).write_text(Runtimes(built_dir).lock_hash("py311") + "\n")
    runtimes = Runtimes(built_dir)
    runtimes.get("py311")

    def builds() -> list[Path]:
        return sorted((built_dir / "builds").iterdir())

    first = runtimes.build("py311", uv=str(uv))
    assert runtimes.get("py311") == first
    [moved] = [path for path in builds() if path != first.python.parents[1].parent]
    assert (moved / "venv" / "pyvenv.cfg").exists()  # kept for the jobs that still run on it
    second = runtimes.build("py311", uv=str(uv))
    assert runtimes.get("py311") == second != first
    assert (built_dir / "seen").read_text() == "current\ncurrent\n"
    both = sorted(runtime.python.parents[1].parent for runtime in (first, second))
    assert builds() == both  # the one from before the swaps, two builds old, is removed

    monkeypatch.setenv("FAIL", "1")
    with pytest.raises(RuntimeProblem, match="could not build the runtime 'py311'"):
        runtimes.build("py311", uv=str(uv))
    assert runtimes.get("py311") == second
    assert builds() == both
