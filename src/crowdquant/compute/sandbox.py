"""Running an uploaded model, arbitrary code, in a bubblewrap sandbox.

`run_model` calls a cloudpickled ``predict`` on a round's live features inside ``bwrap``:

- no network: fresh network, PID, IPC and UTS namespaces (only a loopback of its own), and
  the runner checks that the network is unreachable before it loads the model;
- a read-only view of ``/usr`` and of the runtime's Python environment, the input files
  bound read-only under ``/in``, nothing else of the host (no ``/etc``, no home, no other
  model's files, none of the operator's data);
- a private size-capped ``/scratch`` (the working and home directory) and an ``/out``
  directory for the runner's result;
- an unprivileged uid: started as root, bwrap keeps the host's user namespace and the
  runner drops to a uid of its own for this run (``setpriv``), so the process limit counts
  this run's processes only; started as another user, bwrap maps uid 65534 inside onto that
  user, whose other processes then count towards the process limit too (run the worker as
  root, or allow for them);
- limits on address space, CPU time, processes and file size (``prlimit``), and the wall
  clock;
- a random exit token handed to the runner on standard input: a run counts only if the
  runner's result carries it, so a model that writes its output and exits early fails.

A run ends in a `SandboxResult`: success with the predictions file, or a typed, readable
`Failure` (cannot unpickle, import error, timeout, out of memory, invalid output, tried to
reach the network, ...). `validate_output` checks the predictions as any submission; what
it raises as `ValueError` is an invalid output. `scan_pickle` is fickling's static scan,
reported as advice only: every pickle is treated as hostile either way.
"""

from __future__ import annotations

import json
import os
import pickletools
import secrets
import shutil
import signal
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path

from crowdquant.compute.runtime import Runtime, default_runtime
from crowdquant.settings import Settings

RUNNER = Path(__file__).with_name("sandbox_runner.py")
LOG_TAIL_BYTES = 64 * 1024
"""The end of a run's output kept as its log."""
FIRST_UID = 200_000
"""Sandboxes started as root run as a uid drawn from FIRST_UID upwards, one per run."""
UID_RANGE = 50_000
INSIDE_UID = 65534
CPU_SIGNALS = (signal.SIGXCPU, signal.SIGKILL)
"""How the kernel ends a process past its CPU-time limit (soft, then hard)."""
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


class Failure(StrEnum):
    """Why a run did not produce predictions. All but `error` are the model's fault."""

    cannot_unpickle = "cannot_unpickle"
    import_error = "import_error"
    timeout = "timeout"
    out_of_memory = "out_of_memory"
    too_many_processes = "too_many_processes"
    invalid_output = "invalid_output"
    network = "network"
    predict_error = "predict_error"
    exited_early = "exited_early"
    error = "error"
    """The platform's fault: the sandbox could not start, or could reach the network."""


FAILURE_TEXT = {
    Failure.cannot_unpickle: "cannot unpickle the model",
    Failure.import_error: "import error",
    Failure.timeout: "timeout",
    Failure.out_of_memory: "out of memory",
    Failure.too_many_processes: "too many processes",
    Failure.invalid_output: "invalid output",
    Failure.network: "tried to reach the network",
    Failure.predict_error: "predict raised an error",
    Failure.exited_early: "exited before finishing",
    Failure.error: "platform error",
}


class SandboxUnavailable(RuntimeError):  # noqa: N818
    """bubblewrap (``bwrap``) or util-linux (``prlimit``, ``setpriv``) is missing."""


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use."""

    memory_bytes: int = 4 << 30
    cpu_seconds: int = 600
    wall_seconds: float = 600.0
    processes: int = 64
    file_bytes: int = 256 << 20
    scratch_bytes: int = 512 << 20
    threads: int = 1
    """Threads the numeric libraries start (OMP_NUM_THREADS and the like): one CPU."""

    @classmethod
    def from_settings(cls, settings: Settings) -> SandboxLimits:
        return cls(
            memory_bytes=settings.compute_memory_mb << 20,
            cpu_seconds=settings.compute_cpu_seconds,
            wall_seconds=settings.compute_timeout_seconds,
            processes=settings.compute_max_processes,
            file_bytes=settings.compute_max_file_mb << 20,
            scratch_bytes=settings.compute_scratch_mb << 20,
            threads=settings.compute_cpus,
        )


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended: `predictions` (Parquet bytes, columns ``id`` and ``prediction``)
    on success, else `failure` and a readable `message`; `log` is the end of its output."""

    failure: Failure | None
    message: str
    log: str
    seconds: float
    predictions: bytes | None = None
    uid: int | None = None
    """The host uid the run had to itself (when the sandbox was started as root)."""

    @property
    def ok(self) -> bool:
        return self.failure is None

    def describe(self) -> str:
        if self.failure is None:
            return self.message
        return f"{FAILURE_TEXT[self.failure]}: {self.message}"


SUSPICIOUS_MODULES = frozenset(
    {"os", "posix", "subprocess", "socket", "shutil", "sys", "ctypes", "importlib", "pty"}
)
SUSPICIOUS_NAMES = frozenset({"eval", "exec", "compile", "open", "__import__", "getattr"})


def pickle_imports(data: bytes) -> list[str]:
    """The ``module.name`` globals the pickle imports when loaded, read from its opcodes
    (nothing is executed)."""
    found: list[str] = []
    strings: list[str] = []
    for opcode, arg, _ in pickletools.genops(data):
        if opcode.name == "GLOBAL" and isinstance(arg, str):
            found.append(arg.replace(" ", ".", 1))
        elif opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
            found.append(f"{strings[-2]}.{strings[-1]}")
        elif isinstance(arg, str):
            strings.append(arg)
    return list(dict.fromkeys(found))


def scan_pickle(model: Path | bytes, max_bytes: int = 64 << 20) -> str:
    """Advice on the pickle, from its opcodes alone (nothing is executed): the globals it
    imports that can reach the system, then fickling's verdict."""
    data = model.read_bytes() if isinstance(model, Path) else model
    if len(data) > max_bytes:
        return "not scanned: the pickle is too large to scan"
    try:
        imports = pickle_imports(data)
    except Exception as exc:  # advice only: an unreadable pickle is reported, not raised
        return f"INVALID: not a readable pickle ({type(exc).__name__}: {exc})"[:4000]
    risky = [
        name
        for name in imports
        if name.split(".")[0] in SUSPICIOUS_MODULES or name.rsplit(".", 1)[-1] in SUSPICIOUS_NAMES
    ]
    lines = [f"imports that reach the system: {', '.join(risky)}" if risky else ""]
    try:
        from fickling.analysis import check_safety
        from fickling.fickle import Pickled

        results = check_safety(Pickled.load(data, fail_on_decode_error=False))
        verdict = results.to_string().strip() or "nothing found"
        lines.insert(0, f"{results.severity.name}: {verdict}")
    except Exception as exc:  # fickling cannot read every opcode (e.g. protocol 5's)
        lines.insert(
            0,
            f"{'SUSPICIOUS' if risky else 'UNKNOWN'}: fickling could not scan it"
            f" ({type(exc).__name__}: {exc})",
        )
    return "\n".join(line for line in lines if line)[:4000]


def _require(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        raise SandboxUnavailable(
            f"{tool!r} is not installed: models run in a bubblewrap sandbox"
            " (Debian: apt-get install bubblewrap util-linux)"
        )
    return found


def _parents(path: Path) -> list[Path]:
    return list(reversed(path.parents))[1:]


def _bwrap_command(
    runtime: Runtime, inputs: dict[str, Path], out: Path, limits: SandboxLimits, uid: int | None
) -> list[str]:
    """The bwrap command line; `uid` None means bwrap runs unprivileged (a user namespace)."""
    prefixes = [Path(os.path.realpath(p)) for p in runtime.prefixes]
    command = [
        _require("prlimit"),
        f"--as={limits.memory_bytes}",
        f"--cpu={limits.cpu_seconds}:{limits.cpu_seconds + 1}",
        f"--nproc={limits.processes}",
        f"--fsize={limits.file_bytes}",
        "--",
        _require("bwrap"),
    ]
    if uid is None:
        command += ["--unshare-all", "--unshare-user", "--disable-userns"]
        command += ["--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID)]
    else:  # as root: no user namespace, so the uid below is a real, unprivileged host uid
        command += ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
        command += ["--unshare-cgroup-try", "--cap-add", "CAP_SETUID,CAP_SETGID"]
    command += ["--die-with-parent", "--new-session", "--clearenv"]
    command += ["--ro-bind", "/usr", "/usr"]
    for link in ("bin", "lib", "lib64"):
        if os.path.islink(f"/{link}"):
            command += ["--symlink", f"usr/{link}", f"/{link}"]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", "/scratch"]
    command += ["--perms", "1777", "--size", str(limits.scratch_bytes), "--tmpfs", "/dev/shm"]
    made: set[Path] = {Path("/"), Path("/usr")}
    for prefix in prefixes:
        for parent in _parents(prefix):
            if parent not in made:
                made.add(parent)
                command += ["--perms", "0755", "--dir", str(parent)]
        command += ["--ro-bind", str(prefix), str(prefix)]
    command += ["--perms", "0755", "--dir", "/in"]
    for name, source in inputs.items():
        command += ["--ro-bind", str(source), f"/in/{name}"]
    command += ["--bind", str(out), "/out", "--remount-ro", "/", "--chdir", "/scratch"]
    path = f"{runtime.python.parent}:/usr/bin"
    variables = {"PATH": path, "HOME": "/scratch", "TMPDIR": "/scratch", "USER": "sandbox"}
    variables |= {name: str(limits.threads) for name in THREAD_VARIABLES}
    for name, value in variables.items():
        command += ["--setenv", name, value]
    command.append("--")
    if uid is not None:
        command += [_require("setpriv"), f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        command += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    benchmarks = "/in/benchmarks.parquet" if "benchmarks.parquet" in inputs else ""
    command += [str(runtime.python), "-I", "/in/runner.py", "/in/model.pkl"]
    command += ["/in/live.parquet", benchmarks, "/out"]
    return command


def run_model(
    model: Path,
    live: Path,
    *,
    benchmarks: Path | None = None,
    limits: SandboxLimits | None = None,
    runtime: Runtime | None = None,
    validate_output: Callable[[bytes], object] | None = None,
    work_dir: Path | None = None,
) -> SandboxResult:
    """Run the pickled ``predict`` in `model` on the `live` features (Parquet) in a sandbox.

    Raises `SandboxUnavailable` if bubblewrap is missing; every other way a run can end is a
    `SandboxResult`.
    """
    limits = limits or SandboxLimits()
    runtime = runtime or default_runtime()
    as_root = os.geteuid() == 0
    uid = FIRST_UID + secrets.randbelow(UID_RANGE) if as_root else None
    inputs = {"runner.py": RUNNER, "model.pkl": model, "live.parquet": live}
    if benchmarks is not None:
        inputs["benchmarks.parquet"] = benchmarks
    inputs = {name: path.resolve() for name, path in inputs.items()}
    with tempfile.TemporaryDirectory(prefix="cq-run-", dir=work_dir) as tmp:
        out = Path(tmp) / "out"
        out.mkdir(mode=0o700)
        if uid is not None:
            os.chown(out, uid, uid)
        command = _bwrap_command(runtime, inputs, out, limits, uid)
        token = secrets.token_hex(16)
        log_path = Path(tmp) / "log.txt"
        started = time.monotonic()
        timed_out = False
        with log_path.open("wb") as log_file:
            process = subprocess.Popen(
                command,
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            assert process.stdin is not None
            try:
                process.stdin.write(f"{token}\n".encode())
                process.stdin.close()
            except BrokenPipeError:
                pass
            try:
                returncode = process.wait(timeout=limits.wall_seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                os.killpg(process.pid, signal.SIGKILL)
                returncode = process.wait()
            if uid is not None:
                _end_processes_of(uid)
        seconds = time.monotonic() - started
        log = _tail(log_path)
        result = _outcome(out, token, returncode, timed_out, limits, log, seconds, validate_output)
        return replace(result, uid=uid)


def processes_of(uid: int) -> list[int]:
    """The processes on this machine whose real uid is `uid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def _end_processes_of(uid: int, wait_seconds: float = 10.0) -> None:
    """Kill what is left of a run (its PID namespace ends with it, asynchronously) and wait
    until it is gone, so a run's processes never outlive it."""
    deadline = time.monotonic() + wait_seconds
    while (left := processes_of(uid)) and time.monotonic() < deadline:
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        time.sleep(0.02)


def _tail(path: Path) -> str:
    with path.open("rb") as file:
        file.seek(max(0, path.stat().st_size - LOG_TAIL_BYTES))
        return file.read().decode(errors="replace")


def _outcome(
    out: Path,
    token: str,
    returncode: int,
    timed_out: bool,
    limits: SandboxLimits,
    log: str,
    seconds: float,
    validate_output: Callable[[bytes], object] | None,
) -> SandboxResult:
    def failed(failure: Failure, message: str) -> SandboxResult:
        return SandboxResult(failure, message, log, seconds)

    if timed_out:
        return failed(Failure.timeout, f"the run took longer than {limits.wall_seconds:g} s")
    result = _read_result(out / "result.json", token)
    if result is None:
        if returncode in {code for s in CPU_SIGNALS for code in (-s, 128 + s)}:
            return failed(Failure.timeout, f"the run used more than {limits.cpu_seconds} s of CPU")
        if "bwrap:" in log and returncode == 1:
            return failed(Failure.error, f"the sandbox did not start: {log.strip()[-500:]}")
        return failed(
            Failure.exited_early,
            f"the model ended the run before predict returned (exit status {returncode})",
        )
    status, reason, message = result
    if status == "error":
        return failed(Failure.error, message)
    if status != "ok":
        try:
            return failed(Failure(reason), message)
        except ValueError:
            return failed(Failure.error, f"the runner reported {reason!r}: {message}")
    data = _read_own_file(out / "predictions.parquet", limits.file_bytes)
    if data is None:
        return failed(Failure.invalid_output, "no predictions were written")
    if validate_output is not None:
        try:
            validate_output(data)
        except ValueError as exc:
            return failed(Failure.invalid_output, str(exc))
    return SandboxResult(None, message, log, seconds, predictions=data)


def _read_own_file(path: Path, max_bytes: int) -> bytes | None:
    """At most `max_bytes` of the regular file the run wrote at `path`, or None: never
    following a link the model left there (to a file of the host's) nor waiting on a pipe."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError:
        return None
    with os.fdopen(descriptor, "rb") as file:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        return file.read(max_bytes)


def _read_result(path: Path, token: str) -> tuple[str, str, str] | None:
    """The runner's (status, reason, message), if it wrote them with this run's token."""
    text = _read_own_file(path, 100_000)
    try:
        found = json.loads(b"" if text is None else text)
    except ValueError:
        return None
    if not isinstance(found, dict) or not secrets.compare_digest(
        str(found.get("token", "")), token
    ):
        return None
    return str(found.get("status")), str(found.get("reason")), str(found.get("message"))[:4000]
