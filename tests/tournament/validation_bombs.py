"""Files that are small to upload and huge to read, and a validation pool with small limits,
for the tests of the worker processes that read uploads."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from crowdquant.tournament.validator import ValidationLimits, ValidationPool

TEST_LIMITS = ValidationLimits(memory_mb=256, cpu_seconds=10, timeout_seconds=30)


def decompression_bomb(rows: int = 64, value_mb: int = 16) -> bytes:
    """A Parquet file of a few KB whose `rows` ids are all one `value_mb` MiB string: stored
    once in a compressed dictionary page, it decodes to `rows * value_mb` MiB."""
    value = "a" * (value_mb * 1024 * 1024)
    ids = pa.DictionaryArray.from_arrays(pa.array(np.zeros(rows, np.int8)), pa.array([value]))
    table = pa.table({"id": ids, "prediction": pa.array(np.linspace(0.1, 0.9, rows))})
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd", store_schema=False)
    return buffer.getvalue()


def resident_mb() -> float:
    """This process's resident memory, in MiB."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        pages = int(statm.read().split()[1])
    return pages * 4096 / 2**20


@contextmanager
def small_pool(limits: ValidationLimits = TEST_LIMITS) -> Iterator[ValidationPool]:
    """A pool of one worker under `limits`, closed after the block."""
    pool = ValidationPool(limits, workers=1)
    try:
        yield pool
    finally:
        pool.close()
