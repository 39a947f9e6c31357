"""The Python environments uploaded models run in.

The default runtime is the server's own environment (numpy, pandas, scikit-learn, LightGBM,
cloudpickle, ...), recorded by the hash of the lock file it was installed from, so each job
says what it ran under; it needs no build step.

Named runtimes are locked environments shipped with the package: a folder per runtime
under `runtimes/` (`SHIPPED`), holding a ``pyproject.toml`` and the ``uv.lock`` resolved
from it. `Runtimes.build` installs one from its lock exactly (``uv sync --locked``) into
the runtimes folder (`Settings.compute_runtimes_dir`) and records the lock's hash last;
`Runtimes.get` answers a built runtime, or raises `RuntimeNotBuilt` (never built, a build
that did not finish, or built from another lock) saying which command builds it.

Each build goes into a fresh folder under ``builds/``; ``<name>`` is a link to the current
one, swapped in by one rename once the build is complete. Jobs starting during a build use
the previous build, which is kept (for the jobs still running on it) until the next swap.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from crowdquant.settings import Settings

DEFAULT_RUNTIME = "default"
LOCK_FILE = Path(__file__).resolve().parents[3] / "uv.lock"
"""The project's lock file, where the server runs from a checkout."""
SHIPPED = Path(__file__).with_name("runtimes")
"""The named runtimes' lock files: ``runtimes/<name>/{pyproject.toml,uv.lock}``."""
PROJECT_FILES = ("pyproject.toml", "uv.lock")
BUILT_HASH = "lock-hash"
"""Written last into a built runtime's folder: the hash of the lock it was built from."""
BUILD_SECONDS = 1800
BUILDS = "builds"
"""The folder under the runtimes folder holding each build; ``<name>`` links to the current."""


class RuntimeProblem(Exception):  # noqa: N818
    """A runtime that cannot be used or built; the message says why and what to do."""


class UnknownRuntime(RuntimeProblem):
    pass


class RuntimeNotBuilt(RuntimeProblem):
    pass


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


def shipped_names(shipped: Path | None = None) -> list[str]:
    """The named runtimes whose lock files are in `shipped` (default `SHIPPED`), sorted."""
    shipped = shipped or SHIPPED
    if not shipped.is_dir():
        return []
    return sorted(
        entry.name
        for entry in shipped.iterdir()
        if all((entry / name).is_file() for name in PROJECT_FILES)
    )


def runtime_names(shipped: Path | None = None) -> list[str]:
    """Every runtime a model may ask for: the default first, then the named ones."""
    return [DEFAULT_RUNTIME, *shipped_names(shipped)]


def _venv_runtime(name: str, venv: Path, hash_: str) -> Runtime:
    """The runtime of the virtual environment `venv`, with its base installation."""
    config = dict(
        line.split("=", 1) for line in (venv / "pyvenv.cfg").read_text().splitlines() if "=" in line
    )
    config = {key.strip(): value.strip() for key, value in config.items()}
    base = Path(os.path.realpath(config["home"])).parent
    version = ".".join(config.get("version_info", config.get("version", "")).split(".")[:2])
    return Runtime(
        name=name,
        python=venv / "bin" / "python",
        prefixes=tuple(dict.fromkeys((Path(os.path.realpath(venv)), base))),
        lock_hash=hash_,
        python_version=version,
    )


class Runtimes:
    """The runtimes models may ask for: `default` and the named ones shipped in `shipped`,
    built under `built_dir` (one folder per name: the environment in ``venv``; None: none
    is built)."""

    def __init__(
        self,
        built_dir: Path | None,
        *,
        shipped: Path | None = None,
        default: Runtime | None = None,
    ) -> None:
        self.built_dir, self.shipped = built_dir, shipped or SHIPPED
        self._default = default

    @property
    def default(self) -> Runtime:
        if self._default is None:
            self._default = default_runtime()
        return self._default

    def names(self) -> list[str]:
        return runtime_names(self.shipped)

    def lock_hash(self, name: str) -> str:
        """The hash of named runtime `name`'s shipped lock file."""
        return lock_hash(self._project(name) / "uv.lock")

    def _project(self, name: str) -> Path:
        if name not in shipped_names(self.shipped):
            raise UnknownRuntime(f"unknown runtime {name!r}: choose one of {self.names()}")
        return self.shipped / name

    def get(self, name: str) -> Runtime:
        """Runtime `name`, ready to run; raises `UnknownRuntime` or `RuntimeNotBuilt`."""
        if name == DEFAULT_RUNTIME:
            return self.default
        wanted = self.lock_hash(name)
        build = f"run `crowdquant compute runtime build {name}`"
        if self.built_dir is None:
            raise RuntimeNotBuilt(f"the runtime {name!r} is not built: {build}")
        folder = (self.built_dir / name).resolve()  # one build, even if swapped meanwhile
        try:
            built = (folder / BUILT_HASH).read_text().strip()
        except OSError:
            raise RuntimeNotBuilt(f"the runtime {name!r} is not built: {build}") from None
        if built != wanted:
            raise RuntimeNotBuilt(
                f"the runtime {name!r} was built from another lock ({built}): {build} again"
            )
        return _venv_runtime(name, folder / "venv", built)

    def build(self, name: str, *, uv: str | None = None) -> Runtime:
        """Install named runtime `name` from its lock file, exactly, into a fresh folder; record
        its lock hash once done and swap it in. Raises `UnknownRuntime`, or `RuntimeProblem`
        when uv is missing or fails (its output in the message; the current build stays)."""
        project = self._project(name)
        if self.built_dir is None:
            raise RuntimeProblem("no folder to build runtimes in")
        uv = uv or shutil.which("uv")
        if uv is None:
            raise RuntimeProblem("building a runtime needs uv (https://docs.astral.sh/uv/)")
        folder = self.built_dir / BUILDS / f"{name}-{secrets.token_hex(6)}"
        (folder / "project").mkdir(parents=True)
        try:
            runtime = self._install(name, project, folder, uv)
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        self._swap_in(name, folder)
        return runtime

    def _install(self, name: str, project: Path, folder: Path, uv: str) -> Runtime:
        for file in PROJECT_FILES:
            shutil.copyfile(project / file, folder / "project" / file)
        environment = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(folder / "venv")}
        for variable in ("VIRTUAL_ENV", "UV_PYTHON"):
            environment.pop(variable, None)
        command = [uv, "sync", "--locked", "--no-install-project", "--no-dev"]
        command += ["--no-python-downloads"]  # an interpreter of this machine's: no downloads
        command += ["--project", str(folder / "project")]
        done = subprocess.run(
            command,
            env=environment,
            capture_output=True,
            text=True,
            timeout=BUILD_SECONDS,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeProblem(f"uv could not build the runtime {name!r}:\n{done.stderr[-4000:]}")
        hash_ = self.lock_hash(name)
        (folder / BUILT_HASH).write_text(hash_ + "\n")
        return _venv_runtime(name, folder / "venv", hash_)

    def _swap_in(self, name: str, folder: Path) -> None:
        """Point ``<name>`` at the build `folder` with one rename; remove the builds of `name`
        older than the one it replaces."""
        assert self.built_dir is not None
        current = self.built_dir / name
        replaced = current.resolve() if current.is_symlink() else None
        if current.is_dir() and not current.is_symlink():  # a build from before the links
            moved = folder.with_name(f"{name}-{secrets.token_hex(6)}")
            current.rename(moved)
            replaced = moved.resolve()
        link = folder.with_name(f".{folder.name}.link")
        link.symlink_to(Path(BUILDS) / folder.name)  # relative to the runtimes folder
        os.replace(link, current)
        for old in folder.parent.iterdir():
            if old.name.rpartition("-")[0] == name and old.resolve() not in (
                folder.resolve(),
                replaced,
            ):
                shutil.rmtree(old, ignore_errors=True)


def runtimes_from_settings(settings: Settings) -> Runtimes:
    """The runtimes, built under the settings' runtimes folder."""
    return Runtimes(settings.compute_runtimes_dir)
