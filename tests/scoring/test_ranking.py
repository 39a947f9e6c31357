"""Rank and transform primitives: golden vectors, NaN handling, and parity with numerai-tools."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.ranking import (
    doubled_average_ranks,
    for_column_chunks,
    gaussian,
    gaussian_table,
    gaussianised,
    gaussianised_rows,
    power,
    tie_kept_rank,
)


def test_golden_ranks() -> None:
    np.testing.assert_allclose(tie_kept_rank(np.arange(5.0)), [0.1, 0.3, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(tie_kept_rank([1.0, 0, 1, 0, 1]), [0.7, 0.2, 0.7, 0.2, 0.7])


def test_nan_stays_nan_and_is_not_counted() -> None:
    ranks = tie_kept_rank([[3.0, 1.0], [np.nan, 2.0], [1.0, np.nan], [2.0, 0.0]])
    np.testing.assert_allclose(ranks[:, 0], [5 / 6, np.nan, 1 / 6, 0.5])
    np.testing.assert_allclose(ranks[:, 1], [0.5, 5 / 6, np.nan, 1 / 6])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rank_and_gaussian_match_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.round(rng.random((300, 4)), 1 + seed)  # plenty of ties
    values[rng.random(values.shape) < 0.05] = np.nan
    frame = pd.DataFrame(values)
    np.testing.assert_allclose(tie_kept_rank(values), nt.tie_kept_rank(frame), atol=1e-15)
    np.testing.assert_allclose(
        gaussianised(values), nt.gaussian(nt.tie_kept_rank(frame)), rtol=1e-12, atol=1e-12
    )


def test_power_is_signed() -> None:
    np.testing.assert_allclose(power(np.array([-4.0, 0.0, 4.0]), 1.5), [-8.0, 0.0, 8.0])


@pytest.mark.parametrize("levels", [None, 3, 50])
def test_row_kernels_are_bit_identical_to_the_column_functions(levels: int | None) -> None:
    rng = np.random.default_rng(4)
    values = rng.random((200, 6))
    if levels is not None:
        values = np.floor(values * levels)
    values[:, 2] = 7.0  # constant
    rows = values.T.copy()
    assert np.array_equal(gaussianised_rows(rows), gaussianised(values).T)
    assert np.array_equal(gaussianised_rows(rows, 1.5), power(gaussianised(values), 1.5).T)
    holes = rows.copy()
    holes[rng.random(holes.shape) < 0.1] = np.nan
    np.testing.assert_array_equal(gaussianised_rows(holes), gaussianised(holes.T).T)


def test_doubled_average_ranks() -> None:
    doubled, counts = doubled_average_ranks([[1.0, 0.0, 1.0, np.nan, 1.0], [4, 3, 2, 1, 0]])
    np.testing.assert_array_equal(doubled, [[6, 2, 6, 0, 6], [10, 8, 6, 4, 2]])
    np.testing.assert_array_equal(counts, [4, 5])


def test_gaussian_table_indexes_by_doubled_rank() -> None:
    table = gaussian_table(5)
    assert np.isnan(table[:2]).all()
    np.testing.assert_allclose(table[[2, 6, 10]], gaussian(np.array([0.1, 0.5, 0.9])))
    np.testing.assert_allclose(gaussian_table(5, 1.5), power(table, 1.5), equal_nan=True)


@pytest.mark.parametrize("workers", [1, 3])
def test_for_column_chunks_covers_every_column_once(workers: int) -> None:
    seen: list[tuple[int, int]] = []
    lock = threading.Lock()

    def work(start: int, stop: int) -> None:
        with lock:
            seen.append((start, stop))

    for_column_chunks(10, work, chunk_size=3, workers=workers)
    assert sorted(seen) == [(0, 3), (3, 6), (6, 9), (9, 10)]
    with pytest.raises(ValueError, match="chunk_size"):
        for_column_chunks(10, work, chunk_size=0)
