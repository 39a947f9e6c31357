"""Validating an uploaded predictions file against a round's live ids.

The rules and their order follow numerai-tools' `validate_submission_numerai` (0.7.2): the
headers, then the ids, then the values. Each failure raises a typed `SubmissionError` whose
`code` is the reference's message prefix (`invalid_submission_headers`, `..._ids`,
`..._values`) or `invalid_submission_file` for a file that cannot be read at all. Messages
say what was found: the columns, how many ids are missing, the min and max, an example id.

Rules (the reference's behaviour unless marked *departure*):

* File: bytes of CSV or Parquet, or a DataFrame. Parquet is recognised by the `PAR1` magic
  at both ends of the bytes, whatever the filename says (*departure*: the reference has no
  file layer); otherwise the filename suffix must be `.csv`, `.parquet` or `.pq`, or absent
  (then the bytes are read as CSV). Empty bytes, bytes over `max_bytes`, compressed
  archives, binary or non-UTF-8 content and ragged CSV rows are refused.
* Size, before decoding (*departure*): a Parquet file is judged by its footer first, and
  refused with more than `max_rows` rows, `MAX_PARQUET_COLUMNS` columns or
  `MAX_ROW_GROUPS` row groups; a CSV file is refused with more than `max_rows` lines
  after its header or a header line longer than `MAX_HEADER_BYTES`. So a small file that
  would decode to millions of rows is never decoded. `max_rows` defaults to the ids the
  file is checked against plus a margin (`row_limit`): a round's live rows, or a 2017
  round's tournament rows.
* Messages (*departure*): at most `MAX_MESSAGE_CHARS` characters, naming the first few
  columns and how many more, so a refusal is cheap to store and list.
* Headers: exactly `id` then one of `prediction` / `probability`; no other column.
  *Departure*: a Parquet file (or DataFrame) whose only column is the prediction column
  and whose index is named `id` is accepted, the index being turned into the `id` column
  (what `df.to_parquet()` writes for predictions indexed by id).
* Ids, compared as strings: CSV ids are read as text, never as numbers, so `007` stays
  `007`; DataFrame and Parquet ids are cast with `astype(str)` as in the reference, so the
  integer 7 matches the live id "7". No missing id (*departure*: an empty or blank string
  counts as missing, as it would after a CSV round trip; the text `NA` is an id). No live
  id twice (non-live ids may repeat). Every live id present. Non-live ids are not an error;
  they are reported, sorted and unique, in `extra_ids`.
* Values, checked on the live rows: no NaN; within [0, 1] with the reference's `isclose`
  tolerance at the edges (rtol 1e-5, atol 1e-8: 1.00001 and -1e-9 pass, 1.0001 and -1e-7
  fail); not constant (`np.isclose(0, std)`, pandas' std with ddof 1; a single live row
  therefore passes, as in the reference). *Departure*: every row, live or not, must hold a
  number or be empty: text (in a DataFrame or Parquet file) and booleans are refused before
  the other value checks; in a CSV file the cells are parsed as numbers, pandas' NA markers
  (`""`, `nan`, `NA`, `null`, ...) being NaN.
* Live ids: cast to str and de-duplicated (*departure*: the reference counts a repeated
  live id twice and then refuses every submission). An empty or NaN-holding live id list is
  the caller's error and raises a plain `ValueError`, not a `SubmissionError`.

The common upload, plain ASCII CSV text that passes every rule, is accepted without
building a DataFrame (`_accept_plain_csv`); whatever it is not sure of goes through the
general checks, which alone refuse, so both give the same result and the same messages.

A 2017 round (`validate_2017_submission`) takes ``id, probability`` covering every row of
its ``numerai_tournament_data.csv`` (validation, test and live), each id once and no other
id, every probability a number strictly inside (0, 1) (log-loss is infinite at 0 and 1).
Errors count what is wrong per data type ("missing 12 test rows, 3 live rows") and quote
an example id. A constant submission is not refused (it scores ln 2, the benchmark).
"""

from __future__ import annotations

import io
import numbers
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import cached_property
from pathlib import PurePath
from typing import ClassVar, Final, TypeGuard

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ID_COLUMN: Final = "id"
PREDICTION_COLUMNS: Final = ("prediction", "probability")
DEFAULT_MAX_BYTES: Final = 100 * 1024 * 1024
"""Default upload limit: 100 MiB (a Classic live file is about 7 000 rows, well under 1 MiB)."""
DEFAULT_MAX_ROWS: Final = 1_000_000
"""The most rows any upload may hold, whatever the ids it is checked against."""
ROW_MARGIN: Final = 1_000
"""Rows an upload may hold beyond the expected ids (non-live ids are not an error)."""
MAX_PARQUET_COLUMNS: Final = 8
MAX_ROW_GROUPS: Final = 1_000
MAX_HEADER_BYTES: Final = 1024
MAX_MESSAGE_CHARS: Final = 300
SHOWN_COLUMNS: Final = 5

PARQUET_MAGIC: Final = b"PAR1"
CSV_SUFFIXES: Final = frozenset({".csv"})
PARQUET_SUFFIXES: Final = frozenset({".parquet", ".pq"})

# pandas' default NA markers, read as a missing prediction in CSV files.
_CSV_NA_TOKENS: Final = frozenset(
    {
        "",
        "#N/A",
        "#N/A N/A",
        "#NA",
        "-1.#IND",
        "-1.#QNAN",
        "-NaN",
        "-nan",
        "1.#IND",
        "1.#QNAN",
        "<NA>",
        "N/A",
        "NA",
        "NULL",
        "NaN",
        "None",
        "n/a",
        "nan",
        "null",
    }
)
_COMPRESSED_MAGIC: Final = {
    b"\x1f\x8b": "gzip",
    b"PK\x03\x04": "ZIP (or Excel .xlsx)",
    b"BZh": "bzip2",
    b"\xfd7zXZ\x00": "xz",
    b"\x28\xb5\x2f\xfd": "zstd",
}


# --------------------------------------------------------------------------------------------
# Errors


class SubmissionError(ValueError):
    """A submission that cannot be accepted. `code` is stable and machine-readable.

    `str(error)` is `"<code>: <message>"`, like the reference's assertion messages;
    `message` is the readable part alone and `details` holds the figures it quotes.
    """

    code: ClassVar[str] = "invalid_submission"

    def __init__(self, message: str, **details: object) -> None:
        if len(message) > MAX_MESSAGE_CHARS:
            rest = len(message) - MAX_MESSAGE_CHARS
            message = f"{message[:MAX_MESSAGE_CHARS]}... ({rest:,} more characters)"
        super().__init__(message)
        self.message = message
        self.details: dict[str, object] = details

    def __str__(self) -> str:
        return f"{self.code}: {self.message}"


class SubmissionFileError(SubmissionError):
    """The upload cannot be read as a predictions table."""

    code: ClassVar[str] = "invalid_submission_file"


class EmptyFileError(SubmissionFileError):
    """The upload has no content."""


class FileTooLargeError(SubmissionFileError):
    """The upload is larger than the size limit."""


class TooManyRowsError(SubmissionFileError):
    """The upload holds more rows than the row limit (known before decoding)."""


class UnsupportedFormatError(SubmissionFileError):
    """The upload is neither CSV nor Parquet (or is compressed)."""


class UnreadableFileError(SubmissionFileError):
    """The upload claims a supported format but cannot be parsed."""


class HeaderError(SubmissionError):
    """The columns are not exactly `id` and one prediction column."""

    code: ClassVar[str] = "invalid_submission_headers"


class SubmissionIdsError(SubmissionError):
    """A problem with the id column."""

    code: ClassVar[str] = "invalid_submission_ids"


class NanIdsError(SubmissionIdsError):
    """Some rows have no id (NaN, None or an empty string)."""


class DuplicateIdsError(SubmissionIdsError):
    """A live id appears more than once."""


class MissingIdsError(SubmissionIdsError):
    """Some live ids have no row."""


class SubmissionValuesError(SubmissionError):
    """A problem with the prediction values."""

    code: ClassVar[str] = "invalid_submission_values"


class NotNumericError(SubmissionValuesError):
    """A prediction is not a number."""


class NanValuesError(SubmissionValuesError):
    """A live row's prediction is missing."""


class RangeError(SubmissionValuesError):
    """A live prediction lies outside [0, 1] (beyond the tolerance)."""


class ConstantError(SubmissionValuesError):
    """The live predictions have (about) zero standard deviation."""


# --------------------------------------------------------------------------------------------
# Result


@dataclass(frozen=True, eq=False)
class ValidatedSubmission:
    """An accepted submission.

    predictions: the live rows only, indexed by id (str, named `id`), sorted by id, float64,
        named after the prediction column.
    prediction_column: `prediction` or `probability`.
    extra_ids: the ids that are not live, sorted and unique (not an error).
    n_rows: the number of rows in the upload, extra and duplicated rows included.
    """

    predictions: pd.Series
    prediction_column: str
    extra_ids: list[str]
    n_rows: int

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ValidatedSubmission):
            return NotImplemented
        return (
            self.prediction_column == other.prediction_column
            and self.extra_ids == other.extra_ids
            and self.n_rows == other.n_rows
            and self.predictions.name == other.predictions.name
            and self.predictions.index.name == other.predictions.index.name
            and self.predictions.equals(other.predictions)
        )

    __hash__ = None  # type: ignore[assignment]


# --------------------------------------------------------------------------------------------
# Live ids


def row_limit(expected_rows: int) -> int:
    """The most rows an upload checked against `expected_rows` ids may hold, known before
    decoding: those rows, a margin of `ROW_MARGIN` or a tenth more, never over
    `DEFAULT_MAX_ROWS`."""
    return min(DEFAULT_MAX_ROWS, expected_rows + max(ROW_MARGIN, expected_rows // 10))


class LiveIds:
    """A round's live ids as text, de-duplicated and indexed once: build it once per round
    and reuse it for every upload (the lookups then cost a hash probe per row)."""

    def __init__(self, ids: Iterable[str] | pd.Index) -> None:
        self.index = _live_index(ids)
        self.index.get_indexer(self.index[:1])  # builds the hash table now, not per upload

    def __len__(self) -> int:
        return len(self.index)

    def positions(self, ids: npt.NDArray[np.object_]) -> npt.NDArray[np.intp]:
        """Each id's position among the live ids, -1 for an id that is not live."""
        found: npt.NDArray[np.intp] = self.index.get_indexer(pd.Index(ids, copy=False))
        return found

    @cached_property
    def _position_by_id(self) -> dict[str, int]:
        return {live_id: position for position, live_id in enumerate(self.index.tolist())}

    def text_positions(self, ids: Sequence[str]) -> npt.NDArray[np.intp]:
        """`positions` of ids that are all text, looked up one by one (cheaper for a few
        hundred ids than building a pandas index of them)."""
        lookup = self._position_by_id
        return np.fromiter((lookup.get(found, -1) for found in ids), np.intp, len(ids))

    def __reduce__(self) -> tuple[type[LiveIds], tuple[pd.Index]]:
        return LiveIds, (self.index,)


# --------------------------------------------------------------------------------------------
# Entry point


def validate_submission(
    data: bytes | pd.DataFrame,
    live_ids: Iterable[str] | pd.Index | LiveIds,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int | None = None,
) -> ValidatedSubmission:
    """Validate an uploaded predictions file (CSV or Parquet bytes, or a DataFrame).

    Raises a `SubmissionError` subclass naming the first problem found, checking in the
    reference's order: file, headers, ids, values. `max_bytes` and `max_rows` (by default
    `row_limit` of the live ids) apply to bytes only, and are checked before the bytes are
    decoded.
    """
    live = live_ids if isinstance(live_ids, LiveIds) else LiveIds(live_ids)
    limit = row_limit(len(live)) if max_rows is None else max_rows
    if isinstance(data, bytes):
        accepted = _accept_plain_csv(data, live, filename, max_bytes, limit)
        if accepted is not None:
            return accepted
    frame, from_text = _read_frame(data, filename, max_bytes, limit)
    pred_col = _check_headers(frame)
    ids, is_live = _check_ids(frame[ID_COLUMN], live, from_text)
    values = _to_float(frame[pred_col], ids, from_text)

    live_values = pd.Series(
        values[is_live], index=pd.Index(ids[is_live], name=ID_COLUMN), name=pred_col
    ).sort_index()
    _check_values(live_values)
    extra_ids = sorted(set(ids[~is_live]))
    return ValidatedSubmission(
        predictions=live_values,
        prediction_column=pred_col,
        extra_ids=extra_ids,
        n_rows=len(frame),
    )


# --------------------------------------------------------------------------------------------
# File layer


def _live_index(live_ids: Iterable[str] | pd.Index) -> pd.Index:
    if isinstance(live_ids, str | bytes):
        raise TypeError("live_ids must be a collection of ids, not a single string")
    raw = live_ids if isinstance(live_ids, pd.Index) else pd.Index(list(live_ids))
    if raw.isna().any():
        raise ValueError("live_ids must not contain NaN")
    live: pd.Index = pd.Index(raw.astype(str).unique(), name=ID_COLUMN)
    if len(live) == 0:
        raise ValueError("live_ids must not be empty")
    return live


def _read_bytes(
    data: bytes, filename: str | None, max_bytes: int, max_rows: int
) -> tuple[pd.DataFrame, bool]:
    """The uploaded table, and whether it was read from text (CSV)."""
    name = repr(filename) if filename else "the upload"
    if len(data) > max_bytes:
        raise FileTooLargeError(
            f"{name} is {len(data):,} bytes, over the limit of {max_bytes:,} bytes",
            size=len(data),
            max_bytes=max_bytes,
        )
    if not data or data.isspace():
        raise EmptyFileError(f"{name} is empty", size=len(data))
    for magic, kind in _COMPRESSED_MAGIC.items():
        if data.startswith(magic):
            raise UnsupportedFormatError(
                f"{name} is a {kind} archive; upload an uncompressed CSV or Parquet file",
                format=kind,
            )
    suffix = PurePath(filename).suffix.lower() if filename else ""
    is_parquet = data.startswith(PARQUET_MAGIC) and data.endswith(PARQUET_MAGIC)
    if suffix and suffix not in CSV_SUFFIXES | PARQUET_SUFFIXES and not is_parquet:
        raise UnsupportedFormatError(
            f"{name} has suffix {suffix!r}; upload a .csv or .parquet file", suffix=suffix
        )
    if is_parquet:
        return _read_parquet(data, name, max_rows), False
    if suffix in PARQUET_SUFFIXES:
        raise UnreadableFileError(
            f"{name} is not a Parquet file (no PAR1 magic bytes)", format="parquet"
        )
    return _read_csv(data, name, max_rows), True


def _read_parquet(data: bytes, name: str, max_rows: int) -> pd.DataFrame:
    _check_parquet_footer(data, name, max_rows)
    try:
        return pd.read_parquet(io.BytesIO(data))
    except MemoryError:
        raise  # the reader's limit, not the file's fault alone: the caller names it
    except Exception as error:  # pyarrow raises many kinds (ArrowInvalid, OSError, ...)
        raise UnreadableFileError(
            f"{name} cannot be read as Parquet: {error}", format="parquet"
        ) from error


def _check_parquet_footer(data: bytes, name: str, max_rows: int) -> None:
    """Refuse a Parquet file too large to decode, from its footer alone."""
    try:
        footer = pq.ParquetFile(pa.BufferReader(data)).metadata
    except MemoryError:
        raise  # the reader's limit, not the file's fault alone: the caller names it
    except Exception as error:  # pyarrow raises many kinds (ArrowInvalid, OSError, ...)
        raise UnreadableFileError(
            f"{name} cannot be read as Parquet: {error}", format="parquet"
        ) from error
    if footer.num_rows > max_rows:
        raise TooManyRowsError(
            f"{name} holds {footer.num_rows:,} rows, over the limit of {max_rows:,} rows",
            rows=footer.num_rows,
            max_rows=max_rows,
        )
    if footer.num_columns > MAX_PARQUET_COLUMNS:
        names = [footer.schema.column(i).name for i in range(footer.num_columns)]
        raise HeaderError(
            f"columns must be exactly {_EXPECTED_COLUMNS}; found {_some(names)}", columns=names
        )
    if footer.num_row_groups > MAX_ROW_GROUPS:
        raise UnreadableFileError(
            f"{name} is split into {footer.num_row_groups:,} row groups, over the limit of "
            f"{MAX_ROW_GROUPS:,}; write it with larger row groups",
            format="parquet",
        )


def _check_csv_size(data: bytes, name: str, max_rows: int) -> None:
    """Refuse a CSV file with too many lines or an overlong header, before parsing it."""
    if len(data[: MAX_HEADER_BYTES + 1].splitlines()[0]) > MAX_HEADER_BYTES:
        start = data[:MAX_HEADER_BYTES].decode("utf-8", errors="replace").split(",")
        raise HeaderError(
            f"columns must be exactly {_EXPECTED_COLUMNS}; the header line is over "
            f"{MAX_HEADER_BYTES:,} bytes and starts {_some(start[:-1])}",
            columns=start[:-1],
        )
    rows = max(data.count(b"\n"), data.count(b"\r")) - int(data.endswith((b"\n", b"\r")))
    if rows > max_rows:
        raise TooManyRowsError(
            f"{name} holds {rows:,} rows, over the limit of {max_rows:,} rows",
            rows=rows,
            max_rows=max_rows,
        )


def _read_csv(data: bytes, name: str, max_rows: int) -> pd.DataFrame:
    head = data[:65536]
    if b"\x00" in head:
        raise UnsupportedFormatError(
            f"{name} holds binary content, not CSV text or Parquet", format="binary"
        )
    _check_csv_size(data, name, max_rows)
    plain = _read_plain_csv(data)
    if plain is not None:
        return plain
    try:
        frame = pd.read_csv(
            io.BytesIO(data),
            dtype=str,
            na_filter=False,
            keep_default_na=False,
            encoding="utf-8-sig",
        )
    except pd.errors.EmptyDataError as error:
        raise EmptyFileError(f"{name} has no CSV header or rows", format="csv") from error
    except UnicodeDecodeError as error:
        raise UnreadableFileError(
            f"{name} is not UTF-8 text, so not a CSV file", format="csv"
        ) from error
    except pd.errors.ParserError as error:
        message = " ".join(str(error).split())
        raise UnreadableFileError(
            f"{name} cannot be parsed as CSV: {message}", format="csv"
        ) from error
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas turns leading fields into an index when the first row is longer than the
        # header; refuse instead of reading shifted columns.
        raise UnreadableFileError(
            f"{name} cannot be parsed as CSV: the first row has more fields than the header "
            f"({len(frame.columns)} columns)",
            format="csv",
        )
    return frame


def _read_plain_csv(data: bytes) -> pd.DataFrame | None:
    """The frame `_read_csv`'s `pd.read_csv` reads from `data`, split directly when the text
    is plain: UTF-8 (a BOM dropped), ``\n`` line ends, no quote, carriage return or NUL, a
    header of two or more distinct named columns, at least one row, every row as wide as the
    header and none blank. None for anything else, which pandas reads (and refuses)."""
    split = _split_plain_csv(data)
    if split is None:
        return None
    header, columns, _ = split
    return pd.DataFrame(
        {
            name: np.array(column, dtype=object)
            for name, column in zip(header, columns, strict=True)
        },
        dtype=str,
    )


def _split_plain_csv(data: bytes) -> tuple[list[str], list[list[str]], bool] | None:
    """`_read_plain_csv`'s header and columns as text, and whether the text is all ASCII;
    None where that reads nothing. The lines' shape is checked on the bytes at once (a comma
    or a line end is one byte in UTF-8, never part of another character), then the cells are
    split in one go."""
    if b'"' in data or b"\r" in data or b"\x00" in data:
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return None
    raw = data[len(_UTF8_BOM) :] if data.startswith(_UTF8_BOM) else data
    body = text[:-1] if text.endswith("\n") else text
    first_line, line_end, rows = body.partition("\n")
    if not line_end:
        return None  # fewer than two lines
    header = first_line.split(",")
    width = len(header)
    if width < 2 or "" in header or len(set(header)) < width:
        return None
    if not _lines_all_as_wide(raw[:-1] if raw.endswith(b"\n") else raw, width):
        return None
    cells = rows.replace("\n", ",").split(",")
    return header, [cells[column::width] for column in range(width)], text.isascii()


_UTF8_BOM: Final = b"\xef\xbb\xbf"
_COMMA, _LINE_END = ord(","), ord("\n")


def _lines_all_as_wide(body: bytes, width: int) -> bool:
    """Whether every ``\\n``-separated line of `body` holds `width` comma-separated fields
    (so none is blank)."""
    found = np.frombuffer(body, np.uint8)
    separators = found[(found == _COMMA) | (found == _LINE_END)]
    if (len(separators) + 1) % width:
        return False
    lines = np.append(separators, _LINE_END).reshape(-1, width)
    return bool((lines[:, :-1] == _COMMA).all() and (lines[:, -1] == _LINE_END).all())


_ASCII_BLANK: Final = frozenset(" \t\n\v\f\r\x1c\x1d\x1e\x1f")
"""What `str.strip` removes from ASCII text (pandas' `str.strip` removes no more)."""
_BLANK_BYTE: Final = re.compile(rb"[ \t\v\f\r\x1c-\x1f]")
"""Any byte of `_ASCII_BLANK` but the line end."""
_PLAIN_MIN_STD: Final = 1e-6
"""Live predictions spread less than this are left to the general checks (`ConstantError`)."""


def _accept_plain_csv(
    data: bytes, live: LiveIds, filename: str | None, max_bytes: int, max_rows: int
) -> ValidatedSubmission | None:
    """`validate_submission`'s result for the common upload, found without a DataFrame: an
    ASCII CSV file read by `_split_plain_csv`, with the expected header, ids without blanks,
    each live id once and every one present, and every prediction a number without spaces,
    the live ones in range and spread out. None for anything else (the general path then
    decides, and names what is wrong), so only what the general path accepts is accepted
    here, with the same result."""
    suffix = PurePath(filename).suffix.lower() if filename else ""
    if (
        len(data) > max_bytes
        or suffix not in ("", ".csv")
        or data.startswith(PARQUET_MAGIC)
        or data.startswith(tuple(_COMPRESSED_MAGIC))
        or len(data[: MAX_HEADER_BYTES + 1].split(b"\n", 1)[0]) > MAX_HEADER_BYTES
        or data.count(b"\n") - int(data.endswith(b"\n")) > max_rows
    ):
        return None
    split = _split_plain_csv(data)
    if split is None or not split[2]:
        return None
    header, columns, _ = split
    if len(header) != 2 or header[0] != ID_COLUMN or header[1] not in PREDICTION_COLUMNS:
        return None
    id_cells, value_cells = columns
    if "" in id_cells:
        return None
    if _BLANK_BYTE.search(data) is not None:  # else no cell holds a blank: nothing to strip
        if any(not cell.strip() for cell in id_cells):
            return None
        if any(cell[:1] in _ASCII_BLANK or cell[-1:] in _ASCII_BLANK for cell in value_cells):
            return None
    ids = np.array(id_cells, dtype=object)
    positions = live.text_positions(id_cells)
    is_live = positions >= 0
    if (np.bincount(positions[is_live], minlength=len(live)) != 1).any():
        return None
    numbers = pd.to_numeric(np.array(value_cells, dtype=object), errors="coerce")
    if numbers.dtype.kind not in "if":
        return None
    values = np.asarray(numbers, dtype=np.float64)
    live_values = values[is_live]
    if np.isnan(values).any() or len(live_values) < 2:
        return None
    low, high = float(live_values.min()), float(live_values.max())
    in_range = (low >= 0 or bool(np.isclose(low, 0))) and (high <= 1 or bool(np.isclose(high, 1)))
    if not in_range or not float(np.std(live_values, ddof=1)) > _PLAIN_MIN_STD:
        return None
    live_ids = ids[is_live]
    order = np.argsort(live_ids, kind="stable")
    predictions = pd.Series(
        live_values[order],
        index=pd.Index(live_ids[order], dtype="str", name=ID_COLUMN),
        name=header[1],
    )
    return ValidatedSubmission(
        predictions=predictions,
        prediction_column=header[1],
        extra_ids=sorted(set(ids[~is_live].tolist())),
        n_rows=len(ids),
    )


# --------------------------------------------------------------------------------------------
# Headers

_EXPECTED_COLUMNS: Final = " or ".join(f"[{ID_COLUMN!r}, {c!r}]" for c in PREDICTION_COLUMNS)


def _read_frame(
    data: bytes | bytearray | memoryview | pd.DataFrame,
    filename: str | None,
    max_bytes: int,
    max_rows: int,
) -> tuple[pd.DataFrame, bool]:
    """The submission as a frame with an `id` column, and whether it was read from text."""
    if isinstance(data, pd.DataFrame):
        frame, from_text = data, False
    elif isinstance(data, bytes | bytearray | memoryview):
        frame, from_text = _read_bytes(bytes(data), filename, max_bytes, max_rows)
    else:
        raise TypeError(f"data must be bytes or a DataFrame, not {type(data).__name__}")
    return _id_index_to_column(frame), from_text


def _id_index_to_column(frame: pd.DataFrame) -> pd.DataFrame:
    """Turn an index named `id` into the id column when the only column is a prediction."""
    if (
        frame.index.name == ID_COLUMN
        and not isinstance(frame.index, pd.MultiIndex)
        and len(frame.columns) == 1
        and frame.columns[0] in PREDICTION_COLUMNS
    ):
        return frame.reset_index()
    return frame


def _check_headers(frame: pd.DataFrame) -> str:
    columns = list(frame.columns)
    if len(columns) == 2 and columns[0] == ID_COLUMN and columns[1] in PREDICTION_COLUMNS:
        return str(columns[1])
    message = f"columns must be exactly {_EXPECTED_COLUMNS}, in that order; found {_some(columns)}"
    hint = _header_hint(columns)
    raise HeaderError(f"{message}{hint}", columns=columns)


def _some(columns: Sequence[object]) -> str:
    """The first few column names, and how many more there are."""
    shown = "[" + ", ".join(_show(c) for c in columns[:SHOWN_COLUMNS]) + "]"
    more = len(columns) - SHOWN_COLUMNS
    return f"{shown} and {more:,} more" if more > 0 else shown


def _header_hint(columns: Sequence[object]) -> str:
    names = [str(c) for c in columns]
    if len(names) == 1 and any(sep in names[0] for sep in ";\t|"):
        return " (the file looks delimited by something other than a comma)"
    if names and (names[0] == "" or names[0].startswith("Unnamed: ")):
        return " (an unnamed first column: write the file without its index, index=False)"
    if len(names) == 2 and names[1] == ID_COLUMN and names[0] in PREDICTION_COLUMNS:
        return " (the id column must come first)"
    lowered = [n.strip().lower() for n in names]
    if lowered[:1] == [ID_COLUMN] and len(lowered) == 2 and lowered[1] in PREDICTION_COLUMNS:
        return " (names are case- and space-sensitive)"
    if len(names) > 2 and ID_COLUMN in names:
        return " (remove the extra columns)"
    return ""


# --------------------------------------------------------------------------------------------
# Ids


def _ids_as_text(raw: pd.Series, from_text: bool) -> pd.Series:
    """The ids as strings, after the missing-id (NaN or blank) check."""
    missing = raw.isna().to_numpy()
    if isinstance(raw.dtype, pd.StringDtype):
        blank = raw.str.strip().eq("").fillna(False)
        missing = missing | blank.to_numpy(dtype=bool)
    elif from_text or raw.dtype == object or pd.api.types.is_string_dtype(raw.dtype):
        blank = raw.map(lambda cell: isinstance(cell, str) and not cell.strip())
        missing = missing | blank.to_numpy(dtype=bool)
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise NanIdsError(
            f"{int(missing.sum())} row(s) have no id (NaN or empty), e.g. data row {row + 1}",
            count=int(missing.sum()),
            example_row=row + 1,
        )
    return raw.astype(str).reset_index(drop=True).rename(ID_COLUMN)


def _check_ids(
    raw: pd.Series, live: LiveIds, from_text: bool
) -> tuple[pd.Series, npt.NDArray[np.bool_]]:
    """The ids as strings and which rows are live, after the NaN, duplicate and missing-id
    checks (one hash probe per row; the messages' details are found only on failure)."""
    ids = _ids_as_text(raw, from_text)
    positions = live.positions(ids.to_numpy(dtype=object))
    is_live = positions >= 0
    times_seen = np.bincount(positions[is_live], minlength=len(live))
    if (times_seen > 1).any():
        live_rows = ids[is_live]
        repeated = live_rows[live_rows.duplicated()].unique()
        example = repeated[0]
        times = int((live_rows == example).sum())
        raise DuplicateIdsError(
            f"{len(repeated)} live id(s) appear more than once, e.g. {_show(example)} "
            f"({times} times)",
            count=len(repeated),
            example=example,
        )
    absent = live.index[times_seen == 0]
    if len(absent):
        n_live = int(is_live.sum())
        raise MissingIdsError(
            f"{len(absent)} of {len(live)} live ids are missing, e.g. {_show(absent[0])}; "
            f"the file has {n_live} live and {len(ids) - n_live} other rows "
            "(are you predicting on this round's live ids?)",
            count=len(absent),
            n_live=len(live),
            example=absent[0],
        )
    return ids, is_live


# --------------------------------------------------------------------------------------------
# Values


def _to_float(column: pd.Series, ids: pd.Series, from_text: bool) -> npt.NDArray[np.float64]:
    """The predictions as float64 (NaN where missing); refuses anything else."""
    dtype = column.dtype
    if from_text:
        text = column.astype(str).str.strip()
        values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64)
        bad = np.isnan(values)  # then only the cells that are no NA marker
        if bad.any():
            bad &= ~text.isin(_CSV_NA_TOKENS).to_numpy()
    elif pd.api.types.is_bool_dtype(dtype):
        values = np.full(len(column), np.nan)
        bad = ~column.isna().to_numpy()
    elif pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_float_dtype(dtype):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        cells = column.to_numpy(dtype=object)
        values = np.full(len(cells), np.nan)
        bad = np.zeros(len(cells), dtype=bool)
        for i, cell in enumerate(cells):
            if _is_number(cell):
                values[i] = float(cell)
            elif not _is_missing(cell):
                bad[i] = True
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise NotNumericError(
            f"{int(bad.sum())} prediction(s) are not numbers, e.g. {_show(column.iloc[row])} "
            f"for id {_show(ids.iloc[row])}",
            count=int(bad.sum()),
            example_id=ids.iloc[row],
        )
    return values


def _is_number(cell: object) -> TypeGuard[numbers.Real | Decimal]:
    if isinstance(cell, bool | np.bool_):
        return False
    return isinstance(cell, numbers.Real | Decimal) and not _is_missing(cell)


def _is_missing(cell: object) -> bool:
    try:
        return bool(pd.isna(cell))  # type: ignore[call-overload]
    except (TypeError, ValueError):  # arrays and other non-scalars
        return False


def _check_values(predictions: pd.Series) -> None:
    """The reference's NaN, range and standard-deviation checks, on the live rows."""
    nan = predictions.isna()
    if nan.any():
        raise NanValuesError(
            f"{int(nan.sum())} live prediction(s) are NaN, e.g. for id "
            f"{_show(predictions.index[nan.to_numpy()][0])}",
            count=int(nan.sum()),
        )
    low, high = float(predictions.min()), float(predictions.max())
    low_ok = low >= 0 or bool(np.isclose(low, 0))
    high_ok = high <= 1 or bool(np.isclose(high, 1))
    if not (low_ok and high_ok):
        values = predictions.to_numpy()
        worst = int(np.argmin(values)) if not low_ok else int(np.argmax(values))
        raise RangeError(
            f"predictions must lie within [0, 1]; found min {low:.10g} and max {high:.10g} "
            f"(e.g. id {_show(predictions.index[worst])} = {values[worst]:.10g})",
            min=low,
            max=high,
        )
    std = float(predictions.std())
    if np.isclose(0, std):
        raise ConstantError(
            f"predictions must not be constant; their standard deviation is {std:.3g} "
            f"(all about {low:.10g})",
            std=std,
        )


def _show(value: object, limit: int = 40) -> str:
    text = repr(str(value)) if isinstance(value, str) else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------
# 2017 rounds

COLUMN_2017: Final = "probability"


def validate_2017_submission(
    data: bytes | pd.DataFrame,
    row_types: pd.Series,
    *,
    filename: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_rows: int | None = None,
) -> ValidatedSubmission:
    """Validate a 2017 submission against its round's tournament rows.

    `row_types` maps each tournament row's id to its data type (``validation``, ``test`` or
    ``live``), in the order the types are to be named in messages. Returns every row's
    probability, sorted by id; raises a `SubmissionError` subclass otherwise. `max_rows`
    defaults to `row_limit` of the tournament rows.
    """
    if len(row_types) == 0 or row_types.index.has_duplicates:
        raise ValueError("row_types must hold each tournament id once")
    expected = pd.Index(row_types.index.astype(str), name=ID_COLUMN)
    types = pd.Series(row_types.to_numpy(), index=expected)
    limit = row_limit(len(types)) if max_rows is None else max_rows
    frame, from_text = _read_frame(data, filename, max_bytes, limit)
    column = _check_headers(frame)
    if column != COLUMN_2017:
        raise HeaderError(
            f"a 2017 round takes columns ['id', 'probability']; found {list(frame.columns)!r}",
            columns=list(frame.columns),
        )
    ids = _check_2017_ids(frame[ID_COLUMN], types, from_text)
    values = _to_float(frame[column], ids, from_text)
    probabilities = pd.Series(
        values, index=pd.Index(ids.to_numpy(), name=ID_COLUMN), name=column
    ).sort_index()
    _check_probabilities(probabilities, types)
    return ValidatedSubmission(
        predictions=probabilities, prediction_column=column, extra_ids=[], n_rows=len(frame)
    )


def _counted(counts: pd.Series) -> str:
    """``12 test rows, 3 live rows`` from a count per data type."""
    return ", ".join(f"{int(n)} {kind} row{'s' if n != 1 else ''}" for kind, n in counts.items())


def _per_type(ids: pd.Index, types: pd.Series) -> pd.Series:
    order = list(dict.fromkeys(types.to_numpy()))
    counts = types.reindex(ids).value_counts()
    return counts.reindex([kind for kind in order if kind in counts.index])


def _check_2017_ids(raw: pd.Series, types: pd.Series, from_text: bool) -> pd.Series:
    """The ids as strings: each a tournament row, once, and every row there."""
    ids = _ids_as_text(raw, from_text)
    unknown = ids[~ids.isin(types.index)]
    if len(unknown):
        raise SubmissionIdsError(
            f"{len(unknown.unique())} id(s) are not rows of this round's tournament file,"
            f" e.g. {_show(unknown.iloc[0])} (predict on this round's"
            " numerai_tournament_data.csv)",
            count=len(unknown.unique()),
            example=unknown.iloc[0],
        )
    repeated = ids[ids.duplicated()].unique()
    if len(repeated):
        counts = _per_type(pd.Index(repeated), types)
        raise DuplicateIdsError(
            f"{_counted(counts)} appear more than once, e.g. id {_show(repeated[0])}",
            count=len(repeated),
            example=repeated[0],
            per_type={str(k): int(n) for k, n in counts.items()},
        )
    absent = types.index[~types.index.isin(ids)]
    if len(absent):
        counts = _per_type(absent, types)
        total = _per_type(types.index, types)
        raise MissingIdsError(
            f"missing {_counted(counts)} of the round's {_counted(total)},"
            f" e.g. id {_show(absent[0])} (a 2017 submission covers every row of"
            " numerai_tournament_data.csv: validation, test and live)",
            count=len(absent),
            example=absent[0],
            per_type={str(k): int(n) for k, n in counts.items()},
        )
    return ids


def _check_probabilities(probabilities: pd.Series, types: pd.Series) -> None:
    nan = probabilities.isna()
    if nan.any():
        counts = _per_type(probabilities.index[nan.to_numpy()], types)
        raise NanValuesError(
            f"{_counted(counts)} have no probability, e.g. id"
            f" {_show(probabilities.index[nan.to_numpy()][0])}",
            count=int(nan.sum()),
            per_type={str(k): int(n) for k, n in counts.items()},
        )
    values = probabilities.to_numpy()
    outside = (values <= 0) | (values >= 1)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        counts = _per_type(probabilities.index[outside], types)
        raise RangeError(
            f"probability {values[first]:.10g} at id {_show(probabilities.index[first])}"
            f" is outside (0, 1); {_counted(counts)} are outside",
            count=int(outside.sum()),
            example=probabilities.index[first],
            per_type={str(k): int(n) for k, n in counts.items()},
        )
