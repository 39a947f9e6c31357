"""Where uploaded files are decoded and validated: in this process, or in a pool of worker
processes with their own limits.

A predictions file is untrusted: a few kilobytes of Parquet may decode to gigabytes. The
server therefore validates in a `ValidationPool`: worker processes (`pebble.ProcessPool`,
forked from a ``forkserver`` that loaded this module once, so a worker that died is
replaced at once; reused across uploads; the pool is ready when its workers are) that each
run under an address-space limit (`resource.RLIMIT_AS`: the worker's size once loaded,
plus `memory_mb`), a CPU-time limit per file (`RLIMIT_CPU`) and a wall-clock timeout. A
file that breaks a limit fails with a `ValidationLimitError`, a `SubmissionFileError`
naming the limit, so it is recorded as an invalid upload like any other unreadable file;
a worker killed on the way is replaced and the pool keeps serving. The server's own
memory never holds more than the uploaded bytes.

`InProcessValidator` runs the same functions in the caller's process, for the CLI and the
tests that need no isolation. Both take a round's `LiveIds`, indexed once per round.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import signal
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any, Final, Protocol

import pandas as pd
from pebble import ProcessExpired, ProcessPool

from crowdquant.scoring.validation import (
    LiveIds,
    SubmissionFileError,
    ValidatedSubmission,
    validate_2017_submission,
    validate_submission,
)
from crowdquant.settings import Settings


class ValidationLimitError(SubmissionFileError):
    """Reading the file broke the validation worker's memory or time limit."""


class Validator(Protocol):
    """Decodes and validates uploads (see `scoring.validation` for the rules)."""

    def validate(
        self, data: bytes, live_ids: LiveIds, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        """`validate_submission` of `data` against a round's live ids."""
        ...

    def validate_2017(
        self, data: bytes, row_types: pd.Series, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        """`validate_2017_submission` of `data` against a 2017 round's tournament rows."""
        ...

    def close(self) -> None:
        """Stop whatever the validator started."""
        ...


class InProcessValidator:
    """Validates in the calling thread: no isolation, for the CLI and tests."""

    def validate(
        self, data: bytes, live_ids: LiveIds, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        return validate_submission(data, live_ids, filename=filename, max_bytes=max_bytes)

    def validate_2017(
        self, data: bytes, row_types: pd.Series, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        return validate_2017_submission(data, row_types, filename=filename, max_bytes=max_bytes)

    def close(self) -> None:
        pass


IN_PROCESS: Final = InProcessValidator()


@dataclass(frozen=True)
class ValidationLimits:
    """What one file may cost a validation worker."""

    memory_mb: int = 1024
    """Address space a worker may grow by while reading a file, in MiB."""
    cpu_seconds: int = 20
    """CPU time one file may take."""
    timeout_seconds: float = 30.0
    """Wall-clock time a worker may spend on one file."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ValidationLimits:
        return cls(
            memory_mb=settings.validation_memory_mb,
            cpu_seconds=settings.validation_cpu_seconds,
            timeout_seconds=settings.validation_timeout_seconds,
        )


class ValidationPool:
    """Validates in worker processes under `limits`; `close` it when done."""

    def __init__(
        self, limits: ValidationLimits, workers: int = 2, *, start_timeout: float = 120.0
    ) -> None:
        self.limits = limits
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["__main__", __name__])
        self._pool = ProcessPool(
            max_workers=workers,
            initializer=_start_worker,
            initargs=(limits.memory_mb,),
            context=context,
        )
        # a first task starts the workers now, not at the first upload
        try:
            self._pool.schedule(_ready).result(timeout=start_timeout)
        except Exception as exc:
            self.close()
            raise RuntimeError(
                f"the upload validation workers did not start within {start_timeout:g} s"
                f" ({type(exc).__name__}: {exc})"
            ) from exc

    @classmethod
    def from_settings(cls, settings: Settings) -> ValidationPool:
        return cls(ValidationLimits.from_settings(settings), settings.validation_workers)

    def validate(
        self, data: bytes, live_ids: LiveIds, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        return self._run(_validate, data, live_ids, filename, max_bytes)

    def validate_2017(
        self, data: bytes, row_types: pd.Series, *, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        return self._run(_validate_2017, data, row_types, filename, max_bytes)

    def _run(
        self, task: Any, data: bytes, expected: object, filename: str, max_bytes: int
    ) -> ValidatedSubmission:
        limits = self.limits
        future = self._pool.schedule(
            task,
            args=(data, expected, filename, max_bytes, limits.cpu_seconds),
            timeout=limits.timeout_seconds,
        )
        try:
            result: ValidatedSubmission = future.result()
        except FutureTimeout:
            raise self._too_slow(filename) from None
        except MemoryError:
            raise self._too_big(filename) from None
        except ProcessExpired as stopped:
            if stopped.exitcode == -signal.SIGXCPU:
                raise self._too_slow(filename) from None
            raise self._too_big(filename) from None
        return result

    def _too_big(self, filename: str) -> ValidationLimitError:
        mb = self.limits.memory_mb
        return ValidationLimitError(
            f"{filename!r} needs more than {mb:,} MB to read", limit="memory", memory_mb=mb
        )

    def _too_slow(self, filename: str) -> ValidationLimitError:
        seconds = min(self.limits.cpu_seconds, self.limits.timeout_seconds)
        return ValidationLimitError(
            f"reading {filename!r} took more than {seconds:g} s", limit="time", seconds=seconds
        )

    def close(self) -> None:
        """Stop the workers (a file being read is abandoned)."""
        self._pool.stop()  # type: ignore[no-untyped-call]
        self._pool.join(timeout=10)


# --- in the worker process ----------------------------------------------------------------


def _start_worker(memory_mb: int) -> None:
    """Load and warm the validation code, then cap the address space this process may grow
    to: its size now plus `memory_mb`."""
    validate_submission(b"id,prediction\na,0.1\nb,0.9\n", ["a", "b"], filename="warm.csv")
    page = os.sysconf("SC_PAGE_SIZE")
    with open("/proc/self/statm", encoding="ascii") as statm:
        size = int(statm.read().split()[0]) * page
    limit = size + memory_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _ready() -> None:
    """Nothing: a first task, so that the pool starts its workers."""


def _cap_cpu(cpu_seconds: int) -> None:
    """Let this task use `cpu_seconds` more CPU time than the worker has used so far."""
    used = resource.getrusage(resource.RUSAGE_SELF)
    spent = int(used.ru_utime + used.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (spent + cpu_seconds, hard))


def _validate(
    data: bytes, live_ids: LiveIds, filename: str, max_bytes: int, cpu_seconds: int
) -> ValidatedSubmission:
    _cap_cpu(cpu_seconds)
    return validate_submission(data, live_ids, filename=filename, max_bytes=max_bytes)


def _validate_2017(
    data: bytes, row_types: pd.Series, filename: str, max_bytes: int, cpu_seconds: int
) -> ValidatedSubmission:
    _cap_cpu(cpu_seconds)
    return validate_2017_submission(data, row_types, filename=filename, max_bytes=max_bytes)
