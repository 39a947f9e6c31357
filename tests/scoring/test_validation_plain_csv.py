"""Plain CSV uploads are split directly: the frame is pandas' own, or pandas reads the file."""

from __future__ import annotations

import io
import re
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdquant.scoring.validation import (
    LiveIds,
    SubmissionError,
    ValidatedSubmission,
    _accept_plain_csv,
    _read_plain_csv,
    _split_plain_csv,
    validate_submission,
)


def read_by_pandas(data: bytes) -> pd.DataFrame:
    return pd.read_csv(
        io.BytesIO(data), dtype=str, na_filter=False, keep_default_na=False, encoding="utf-8-sig"
    )


def test_a_numerapi_upload_is_split_as_pandas_reads_it() -> None:
    data = b"id,prediction\nn1,0.25\nn2,0.5\nn3,\nn4, 1e-3 \n"
    frame = _read_plain_csv(data)
    assert frame is not None
    pd.testing.assert_frame_equal(frame, read_by_pandas(data))
    with_bom = _read_plain_csv(b"\xef\xbb\xbf" + data)
    assert with_bom is not None
    pd.testing.assert_frame_equal(with_bom, read_by_pandas(data))


def test_anything_but_plain_text_is_left_to_pandas() -> None:
    for data in (
        b'id,prediction\n"n1",0.5\n',  # quoted
        b"id,prediction\r\nn1,0.5\r\n",  # carriage returns
        b"id,prediction\n\nn1,0.5\n",  # a blank line
        b"id,prediction\nn1,0.5,7\n",  # a row wider than the header
        b"id,prediction\nn1\n",  # a narrower one
        b"id,id\nn1,0.5\n",  # a repeated column
        b"id,\nn1,0.5\n",  # an unnamed one
        b"prediction\n0.5\n",  # one column
        b"id,prediction\n",  # no row
        b"id,prediction\nn\xff,0.5\n",  # not UTF-8
    ):
        assert _read_plain_csv(data) is None, data


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab ,\n.1é\t#\\'", max_size=40))
def test_whatever_is_split_equals_what_pandas_reads(text: str) -> None:
    data = text.encode()
    frame = _read_plain_csv(data)
    if frame is not None:
        pd.testing.assert_frame_equal(frame, read_by_pandas(data))


def split_line_by_line(data: bytes) -> tuple[list[str], list[list[str]], bool] | None:
    """`_split_plain_csv` as its docstring reads, one line at a time."""
    if b'"' in data or b"\r" in data or b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if len(lines) < 2:
        return None
    header = lines[0].split(",")
    if len(header) < 2 or "" in header or len(set(header)) < len(header):
        return None
    rows = [line.split(",") for line in lines[1:]]
    if any(len(row) != len(header) for row in rows):
        return None
    return header, [list(column) for column in zip(*rows, strict=True)], text.isascii()


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from([b"", b"\xef\xbb\xbf", b"a,b\n", b"a,b,c\n"]),
    st.text(alphabet="ab,\n é", max_size=30),
)
def test_lines_are_split_as_one_line_at_a_time(start: bytes, text: str) -> None:
    data = start + text.encode()
    assert _split_plain_csv(data) == split_line_by_line(data)


CELLS = st.text(alphabet="ab .1é\t#\\'-e+", max_size=4)


@st.composite
def tables(draw: st.DrawFn) -> bytes:
    """CSV-like text built from rows of cells: mostly plain, some not."""
    width = draw(st.integers(1, 3))
    rows = draw(st.lists(st.lists(CELLS, min_size=width, max_size=width), min_size=1, max_size=5))
    text = "\n".join(",".join(row) for row in rows) + draw(st.sampled_from(["", "\n"]))
    return draw(st.sampled_from([b"", b"\xef\xbb\xbf"])) + text.encode()


@settings(max_examples=300, deadline=None)
@given(tables())
def test_whatever_table_is_split_equals_what_pandas_reads(data: bytes) -> None:
    frame = _read_plain_csv(data)
    if frame is not None:
        pd.testing.assert_frame_equal(frame, read_by_pandas(data))


LIVE_IDS = LiveIds(["n1", "n2", "n3", "n4"])
ID_CELLS = st.sampled_from(["n1", "n2", "n3", "n4", "x", "n1 ", " ", "", "é", "NA"])
VALUE_CELLS = st.sampled_from(
    ["0.25", "0.5", "1", "0", "1.00001", "-1e-9", "1.0001", "-1e-7", "2.5e-1", "+0.75", " 0.5",
     "0.5 ", "nan", "NA", "", "inf", "1_0", "0x1", ".5", "5.", "1e400", "abc", "0.5\t"]
)  # fmt: skip


@st.composite
def uploads(draw: st.DrawFn) -> bytes:
    """Mostly well-formed uploads of `LIVE_IDS`, some with one thing wrong."""
    ids = draw(st.permutations(["n1", "n2", "n3", "n4"]))
    ids = list(ids) + draw(st.lists(ID_CELLS, max_size=3))
    ids = draw(st.lists(ID_CELLS, min_size=1, max_size=6)) if draw(st.booleans()) else ids
    values = [
        draw(VALUE_CELLS) if draw(st.integers(0, 5)) == 0 else f"{0.1 * i:.2f}"
        for i in range(len(ids))
    ]
    column = draw(st.sampled_from(["prediction", "probability", "predictions"]))
    rows = "".join(f"{i},{v}\n" for i, v in zip(ids, values, strict=True))
    return f"id,{column}\n{rows}".encode()


def validated_the_general_way(data: bytes) -> ValidatedSubmission | SubmissionError:
    with patch("crowdquant.scoring.validation._accept_plain_csv", return_value=None):
        try:
            return validate_submission(data, LIVE_IDS, filename="p.csv")
        except SubmissionError as refused:
            return refused


@settings(max_examples=400, deadline=None)
@given(uploads())
def test_whatever_is_accepted_plainly_the_general_checks_accept_alike(data: bytes) -> None:
    accepted = _accept_plain_csv(data, LIVE_IDS, "p.csv", 10**6, 100)
    general = validated_the_general_way(data)
    if accepted is not None:
        assert isinstance(general, ValidatedSubmission)
        assert accepted == general
        assert accepted.predictions.index.dtype == general.predictions.index.dtype
    try:
        found: ValidatedSubmission | SubmissionError = validate_submission(
            data, LIVE_IDS, filename="p.csv"
        )
    except SubmissionError as refused:
        found = refused
    if isinstance(general, SubmissionError):
        assert isinstance(found, SubmissionError) and str(found) == str(general)
    else:
        assert found == general


def test_a_numerapi_upload_is_accepted_without_a_frame() -> None:
    data = b"id,prediction\nn3,0.75\nx,0.5\nn1,0.25\nn2,0.5\nn4,1\nx,0.1\n"
    accepted = _accept_plain_csv(data, LIVE_IDS, "predictions.csv", 10**6, 100)
    assert accepted is not None
    assert accepted == validated_the_general_way(data)
    assert list(accepted.predictions.index) == ["n1", "n2", "n3", "n4"]
    assert accepted.extra_ids == ["x"] and accepted.n_rows == 6
    some = ["n2", "x", "n1", "N1", ""]
    assert list(LIVE_IDS.text_positions(some)) == list(LIVE_IDS.positions(np.array(some)))
    for refused, message in (
        (b"id,prediction\nn1,0.25\nn2,0.5\nn3,0.5\n", "1 of 4 live ids are missing"),
        (b"id,prediction\nn1,0.2\nn1,0.3\nn2,0.5\nn3,0.5\nn4,0.1\n", "appear more than once"),
        (b"id,prediction\nn1,0.2\nn2,1.5\nn3,0.5\nn4,0.1\n", "must lie within [0, 1]"),
        (b"id,prediction\nn1,0.5\nn2,0.5\nn3,0.5\nn4,0.5\n", "must not be constant"),
    ):
        assert _accept_plain_csv(refused, LIVE_IDS, "p.csv", 10**6, 100) is None
        with pytest.raises(SubmissionError, match=re.escape(message)):
            validate_submission(refused, LIVE_IDS, filename="p.csv")
