"""Plain CSV uploads are split directly: the frame is pandas' own, or pandas reads the file."""

from __future__ import annotations

import io

import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from crowdquant.scoring.validation import _read_plain_csv


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
