"""Uploads read in worker processes with limits: a bomb fails its upload, never the server."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd
import pytest

from crowdquant.scoring.validation import LiveIds, SubmissionError, validate_submission
from crowdquant.settings import Settings
from crowdquant.tournament.validator import (
    IN_PROCESS,
    ValidationLimitError,
    ValidationLimits,
    ValidationPool,
)

from .validation_bombs import TEST_LIMITS, decompression_bomb, resident_mb, small_pool

LIVE = LiveIds([f"n{i:04d}" for i in range(500)])


def _csv(ids: pd.Index, values: np.ndarray) -> bytes:
    return pd.DataFrame({"id": ids, "prediction": values}).to_csv(index=False).encode()


@pytest.fixture(scope="module")
def pool() -> Iterator[ValidationPool]:
    with small_pool() as started:
        yield started


def test_the_pool_answers_as_validating_in_process_does(pool: ValidationPool) -> None:
    good = _csv(LIVE.index, np.linspace(0.1, 0.9, len(LIVE)))
    expected = IN_PROCESS.validate(good, LIVE, filename="good.csv", max_bytes=10**6)
    assert pool.validate(good, LIVE, filename="good.csv", max_bytes=10**6) == expected
    missing = _csv(LIVE.index[:-1], np.linspace(0.1, 0.9, len(LIVE) - 1))
    with pytest.raises(SubmissionError) as in_process:
        validate_submission(missing, LIVE, filename="missing.csv")
    with pytest.raises(type(in_process.value)) as in_pool:
        pool.validate(missing, LIVE, filename="missing.csv", max_bytes=10**6)
    assert str(in_pool.value) == str(in_process.value)


def test_a_decompression_bomb_fails_on_the_memory_limit_and_the_pool_goes_on(
    pool: ValidationPool,
) -> None:
    bomb = decompression_bomb()  # 64 rows of 16 MiB once decoded: 1 GiB from a few KB
    assert len(bomb) < 16_000
    before = resident_mb()
    for _ in range(2):  # the worker that ran out is replaced
        with pytest.raises(ValidationLimitError) as refused:
            pool.validate(bomb, LIVE, filename="bomb.parquet", max_bytes=10**6)
        assert str(refused.value) == (
            "invalid_submission_file: 'bomb.parquet' needs more than 256 MB to read"
        )
    good = _csv(LIVE.index, np.linspace(0.1, 0.9, len(LIVE)))
    assert pool.validate(good, LIVE, filename="good.csv", max_bytes=10**6).n_rows == len(LIVE)
    assert resident_mb() - before < 64  # this process never decoded the bomb


def test_a_file_that_takes_too_long_fails_on_the_time_limit() -> None:
    # seconds to read: far past the limit however late a loaded machine checks the clock
    ids = [f"id{i:07d}" for i in range(1_000_000)]
    live = LiveIds(ids)
    slow = (
        "id,prediction\n" + "".join(f"{i},0.{n % 97 + 1}\n" for n, i in enumerate(ids))
    ).encode()
    quick = _csv(LIVE.index, np.linspace(0.1, 0.9, len(LIVE)))
    limits = ValidationLimits(memory_mb=1024, cpu_seconds=10, timeout_seconds=0.2)
    with small_pool(limits) as pool:
        with pytest.raises(ValidationLimitError) as refused:
            pool.validate(slow, live, filename="slow.csv", max_bytes=10**8)
        assert str(refused.value) == (
            "invalid_submission_file: reading 'slow.csv' took more than 0.2 s"
        )
        assert pool.validate(quick, LIVE, filename="quick.csv", max_bytes=10**6).n_rows == 500


def test_the_limits_come_from_the_settings() -> None:
    settings = Settings(
        validation_memory_mb=300, validation_cpu_seconds=7, validation_timeout_seconds=9
    )
    assert ValidationLimits.from_settings(settings) == ValidationLimits(300, 7, 9.0)
    assert TEST_LIMITS.memory_mb == 256
