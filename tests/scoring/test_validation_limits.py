"""Uploads judged by their size before they are decoded, and refusals kept short."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from crowdquant.scoring import validation
from crowdquant.scoring.validation import (
    DEFAULT_MAX_ROWS,
    MAX_HEADER_BYTES,
    MAX_MESSAGE_CHARS,
    MAX_PARQUET_COLUMNS,
    MAX_ROW_GROUPS,
    ROW_MARGIN,
    HeaderError,
    SubmissionError,
    TooManyRowsError,
    UnreadableFileError,
    row_limit,
    validate_2017_submission,
    validate_submission,
)

LIVE = ["n01", "n02", "n03"]


def parquet_bomb(row_groups: int, rows_per_group: int = 1_000_000) -> bytes:
    """A small Parquet file whose footer counts `row_groups * rows_per_group` rows: one id,
    repeated, and no predictions (run-length encoded to a few KB per million rows)."""
    ids = pa.DictionaryArray.from_arrays(
        pa.array(np.zeros(rows_per_group, np.int8)), pa.array(["n01"])
    )
    group = pa.table({"id": ids, "prediction": pa.nulls(rows_per_group, pa.float64())})
    buffer = io.BytesIO()
    with pq.ParquetWriter(buffer, group.schema) as writer:
        for _ in range(row_groups):
            writer.write_table(group)
    return buffer.getvalue()


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> None:
    """Decoding an upload fails the test: the refusal must come before it."""

    def refuse(*_args: object, **_kwargs: object) -> pd.DataFrame:
        raise AssertionError("the upload was decoded")

    monkeypatch.setattr(validation.pd, "read_parquet", refuse)
    monkeypatch.setattr(validation.pd, "read_csv", refuse)


def test_a_parquet_file_of_60_million_rows_is_refused_from_its_footer(no_decoding: None) -> None:
    bomb = parquet_bomb(60)
    assert len(bomb) < 500_000  # small on disk, 60 M rows once decoded
    with pytest.raises(TooManyRowsError) as refused:
        validate_submission(bomb, LIVE, filename="bomb.parquet")
    assert refused.value.message == (
        f"'bomb.parquet' holds 60,000,000 rows, over the limit of {row_limit(len(LIVE)):,} rows"
    )


def test_the_row_limit_is_the_live_rows_and_a_margin(no_decoding: None) -> None:
    live = [f"n{i:05d}" for i in range(20_000)]
    assert row_limit(len(live)) == 22_000
    assert row_limit(3) == 3 + ROW_MARGIN
    assert row_limit(10**8) == DEFAULT_MAX_ROWS
    with pytest.raises(TooManyRowsError, match="holds 22,001 rows, over the limit of 22,000"):
        validate_submission(parquet_bomb(1, 22_001), live)
    lines = "id,prediction\n" + "n00001,0.5\n" * (ROW_MARGIN + 4)
    with pytest.raises(TooManyRowsError, match=f"over the limit of {ROW_MARGIN + 3:,} rows"):
        validate_submission(lines.encode(), LIVE)


def test_a_2017_upload_is_limited_by_the_tournament_rows(no_decoding: None) -> None:
    types = pd.Series(["validation", "test", "live"], index=LIVE)
    with pytest.raises(TooManyRowsError, match=f"over the limit of {ROW_MARGIN + 3:,} rows"):
        validate_2017_submission(parquet_bomb(1, ROW_MARGIN + 4), types)


def test_the_row_limit_is_the_callers(no_decoding: None) -> None:
    with pytest.raises(TooManyRowsError, match="holds 11 rows, over the limit of 10 rows"):
        validate_submission(parquet_bomb(1, 11), LIVE, max_rows=10)


def test_a_parquet_file_with_many_columns_is_refused_from_its_footer(no_decoding: None) -> None:
    wide = pd.DataFrame({f"c{i}": [0.5] for i in range(MAX_PARQUET_COLUMNS + 1)})
    buffer = io.BytesIO()
    wide.to_parquet(buffer, index=False)
    with pytest.raises(HeaderError) as refused:
        validate_submission(buffer.getvalue(), LIVE)
    assert refused.value.message.endswith("found ['c0', 'c1', 'c2', 'c3', 'c4'] and 4 more")


def test_a_parquet_file_in_too_many_row_groups_is_refused(no_decoding: None) -> None:
    with pytest.raises(UnreadableFileError, match=f"over the limit of {MAX_ROW_GROUPS:,}"):
        validate_submission(parquet_bomb(MAX_ROW_GROUPS + 1, 1), LIVE)


def test_a_csv_file_with_too_many_lines_is_refused_before_parsing(no_decoding: None) -> None:
    lines = "id,prediction\n" + "n01,0.5\n" * 11
    with pytest.raises(TooManyRowsError, match="holds 11 rows, over the limit of 10 rows"):
        validate_submission(lines.encode(), LIVE, max_rows=10)


def test_a_csv_file_at_the_row_limit_is_read() -> None:
    lines = "id,prediction\nn01,0.1\nn02,0.5\nn03,0.9"
    assert validate_submission(lines.encode(), LIVE, max_rows=3).n_rows == 3


def test_a_header_only_csv_of_megabytes_gets_a_short_message(no_decoding: None) -> None:
    header = ",".join(f"column_{i}" for i in range(500_000)).encode()
    assert len(header) > 4_000_000
    with pytest.raises(HeaderError) as refused:
        validate_submission(header, LIVE, filename="wide.csv")
    message = str(refused.value)
    assert len(message) <= MAX_MESSAGE_CHARS + 100
    assert f"the header line is over {MAX_HEADER_BYTES:,} bytes" in message
    assert "starts ['column_0', 'column_1', 'column_2', 'column_3', 'column_4'] and" in message


def test_a_wide_header_names_the_first_columns_and_how_many_more() -> None:
    header = ",".join(f"c{i}" for i in range(100)) + "\n" + ",".join(["1"] * 100) + "\n"
    with pytest.raises(HeaderError) as refused:
        validate_submission(header.encode(), LIVE)
    assert refused.value.message.endswith("found ['c0', 'c1', 'c2', 'c3', 'c4'] and 95 more")


def test_every_refusal_is_at_most_a_few_hundred_characters() -> None:
    error = SubmissionError("x" * 10_000)
    assert error.message == "x" * MAX_MESSAGE_CHARS + "... (9,700 more characters)"
