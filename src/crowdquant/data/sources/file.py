"""An operator's own panel from a long-format CSV or Parquet file.

The file has one row per (date, ticker) with columns ``date, ticker, close`` and optionally
``volume`` and ``sector``; other columns are ignored. Column names are case-insensitive and
surrounding whitespace is ignored. Every problem found raises a `PanelError` naming it;
row numbers in messages count data rows from 1 (the CSV header is not counted).
The loader only reads: it never writes anything.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import (
    is_bool_dtype,
    is_datetime64_any_dtype,
    is_numeric_dtype,
    is_string_dtype,
)

from crowdquant.data.eras import era_day_positions
from crowdquant.data.panel import UNKNOWN_SECTOR, Panel, PanelError, equal_weight_market

REQUIRED_COLUMNS = ("date", "ticker", "close")
OPTIONAL_COLUMNS = ("volume", "sector")
CSV_SUFFIXES = frozenset({".csv"})
PARQUET_SUFFIXES = frozenset({".parquet", ".pq"})
MAX_EXAMPLES = 5
# Cells read as missing in CSV number columns; text columns keep e.g. the ticker "NA".
NUMBER_NA_VALUES = ("", "NA", "N/A", "#N/A", "NaN", "nan", "NULL", "null", "None")


def load_panel_file(path: Path, *, min_stocks_per_era: int = 10) -> Panel:
    """Load and validate a long-format panel file (.csv, .parquet or .pq).

    Every era day (see `era_day_positions`) must have at least `min_stocks_per_era`
    priced tickers. The market is the equal-weight index of the panel's own stocks.
    """
    if min_stocks_per_era < 1:
        raise ValueError(f"min_stocks_per_era must be at least 1, got {min_stocks_per_era}")
    path = Path(path)
    frame = _validated_rows(_read_rows(path))
    close = _wide(frame, "close")
    _check_universe(close, min_stocks_per_era)
    volume = _wide(frame, "volume").reindex_like(close) if "volume" in frame else None
    return Panel(
        close=close,
        volume=volume,
        sector=_sectors(frame, close.columns),
        market=equal_weight_market(close),
        name=f"file:{path.name}",
    )


# --- reading ----------------------------------------------------------------------------


def _read_rows(path: Path) -> pd.DataFrame:
    """The file's wanted columns under their canonical names, one row per data row."""
    suffix = _check_file(path)
    reader = _read_csv if suffix in CSV_SUFFIXES else _read_parquet
    try:
        rows = reader(path)
    except PanelError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise PanelError(f"panel file {path.name} is empty") from exc
    except (OSError, ValueError, TypeError, pd.errors.ParserWarning) as exc:
        raise PanelError(f"cannot read panel file {path.name}: {str(exc).strip()}") from exc
    if rows.empty:
        raise PanelError(f"panel file {path.name} has a header but no data rows")
    return rows.reset_index(drop=True)


def _check_file(path: Path) -> str:
    """The file's (lower-case) suffix, after checking it exists, is supported and non-empty."""
    if not path.exists():
        raise PanelError(f"panel file not found: {path}")
    if not path.is_file():
        raise PanelError(f"panel path is not a file: {path}")
    suffix = path.suffix.lower()
    if suffix not in CSV_SUFFIXES | PARQUET_SUFFIXES:
        supported = sorted(CSV_SUFFIXES | PARQUET_SUFFIXES)
        raise PanelError(
            f"unsupported panel file extension {path.suffix!r}; use one of {supported}"
        )
    if path.stat().st_size == 0:
        raise PanelError(f"panel file {path.name} is empty")
    return suffix


def _column_positions(names: list[str], path: Path) -> dict[str, int]:
    """Canonical column name → position in `names` (case-insensitive, whitespace-stripped)."""
    normal = [name.strip().lower() for name in names]
    missing = [c for c in REQUIRED_COLUMNS if c not in normal]
    if missing:
        raise PanelError(
            f"panel file {path.name} is missing required column(s) {missing}; found columns {names}"
        )
    wanted = (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
    repeated = sorted({n for n in normal if n in wanted and normal.count(n) > 1})
    if repeated:
        raise PanelError(
            f"panel file {path.name} has column(s) {repeated} more than once "
            "(column names are case-insensitive)"
        )
    return {c: normal.index(c) for c in wanted if c in normal}


def _read_csv(path: Path) -> pd.DataFrame:
    # The header is read raw first: pandas would rename a repeated column ("close.1").
    header = pd.read_csv(path, header=None, nrows=1, dtype=str, encoding="utf-8-sig")
    names = ["" if pd.isna(v) else str(v) for v in header.iloc[0]]
    positions = _column_positions(names, path)
    raw = {names[pos]: name for name, pos in positions.items()}
    text = [names[positions[c]] for c in ("date", "ticker", "sector") if c in positions]
    numbers = [names[positions[c]] for c in ("close", "volume") if c in positions]
    with warnings.catch_warnings():
        warnings.simplefilter("error", pd.errors.ParserWarning)  # rows longer than the header
        rows = pd.read_csv(
            path,
            index_col=False,
            dtype=dict.fromkeys(text, str),
            keep_default_na=False,
            na_values={column: list(NUMBER_NA_VALUES) for column in numbers},
            encoding="utf-8-sig",
        )
    return rows[list(raw)].rename(columns=raw)


def _read_parquet(path: Path) -> pd.DataFrame:
    import pyarrow.parquet as pq

    names = [str(n) for n in pq.read_schema(path).names]
    positions = _column_positions(names, path)
    raw = {names[pos]: name for name, pos in positions.items()}
    rows = pd.read_parquet(path, columns=list(raw))
    return rows.rename(columns=raw)[list(positions)]


# --- validation ---------------------------------------------------------------------------


def _validated_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Typed, checked rows: date (datetime64[ns]), ticker (str), close/volume (float64)."""
    frame = pd.DataFrame(
        {"date": _parse_dates(rows["date"]), "ticker": _parse_tickers(rows["ticker"])}
    )
    frame["close"] = _parse_numbers(rows["close"], "close")
    if "volume" in rows:
        frame["volume"] = _parse_numbers(rows["volume"], "volume")
    _check_close_present(frame)
    _check_positive_close(frame)
    if "volume" in frame:
        _check_volume_sign(frame)
    _check_duplicates(frame)
    if "sector" in rows:
        frame["sector"] = _clean_labels(rows["sector"])
        _check_one_sector(frame)
    return frame


def _parse_dates(raw: pd.Series) -> pd.Series:
    parsed = _to_datetime(raw)
    bad = parsed.isna() | parsed.lt(pd.Timestamp.min) | parsed.gt(pd.Timestamp.max)
    if bad.any():
        raise PanelError(
            f"{int(bad.sum())} unparseable date value(s), e.g. {_row_examples(bad, raw)}"
        )
    days: pd.Series = parsed.dt.normalize().astype("datetime64[ns]")
    return days


def _to_datetime(raw: pd.Series) -> pd.Series:
    """Datetimes (NaT where unparseable), tz-naive in each value's own local time."""
    if is_datetime64_any_dtype(raw.dtype):
        parsed = raw
    else:
        if is_numeric_dtype(raw.dtype):
            raw = raw.astype(str)  # e.g. 20240105, never nanoseconds since 1970
        elif is_string_dtype(raw):
            raw = raw.str.strip()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            try:
                parsed = pd.to_datetime(raw, errors="coerce")
            except (ValueError, TypeError):  # mixed time-zone offsets
                parsed = pd.to_datetime(raw, errors="coerce", utc=True)
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_tickers(raw: pd.Series) -> pd.Series:
    tickers = _clean_labels(raw)
    missing = tickers.isna()
    if missing.any():
        raise PanelError(
            f"{int(missing.sum())} row(s) with a missing ticker, e.g. {_row_examples(missing, raw)}"
        )
    return tickers.astype(str)


def _clean_labels(raw: pd.Series) -> pd.Series:
    """Whitespace-stripped strings; missing or blank values become NaN."""
    text = raw.astype(str).str.strip()
    return text.where(raw.notna() & text.ne(""))


def _parse_numbers(raw: pd.Series, column: str) -> pd.Series:
    """float64 values, NaN where the cell is empty; non-numeric or infinite cells raise."""
    if is_numeric_dtype(raw.dtype) and not is_bool_dtype(raw.dtype):
        present = raw.notna()
        values = raw.astype("float64")
    else:
        text = raw.astype(str).str.strip()
        present = raw.notna() & text.ne("")
        values = pd.to_numeric(text.where(present), errors="coerce").astype("float64")
    bad = present & ~np.isfinite(values)
    if bad.any():
        raise PanelError(
            f"{int(bad.sum())} non-numeric (or infinite) {column} value(s), "
            f"e.g. {_row_examples(bad, raw)}"
        )
    return values.where(present)


def _check_close_present(frame: pd.DataFrame) -> None:
    missing = frame["close"].isna()
    if missing.any():
        raise PanelError(
            f"{int(missing.sum())} row(s) with a missing (empty) close, "
            f"e.g. {_where_examples(missing, frame)}"
        )


def _check_positive_close(frame: pd.DataFrame) -> None:
    bad = frame["close"].le(0.0)
    if bad.any():
        raise PanelError(
            f"{int(bad.sum())} non-positive close price(s) (prices must be > 0), "
            f"e.g. {_value_examples(bad, frame, 'close')}"
        )


def _check_volume_sign(frame: pd.DataFrame) -> None:
    bad = frame["volume"].lt(0.0)
    if bad.any():
        raise PanelError(
            f"{int(bad.sum())} negative volume value(s), "
            f"e.g. {_value_examples(bad, frame, 'volume')}"
        )


def _check_duplicates(frame: pd.DataFrame) -> None:
    repeated = frame.duplicated(["date", "ticker"], keep=False)
    if not repeated.any():
        return
    keys = frame.loc[repeated, ["date", "ticker"]].drop_duplicates()
    examples = []
    for date, ticker in keys.head(MAX_EXAMPLES).itertuples(index=False):
        rows = np.flatnonzero((frame["date"] == date) & (frame["ticker"] == ticker)) + 1
        examples.append(f"{ticker} on {_day(date)} (rows {', '.join(map(str, rows))})")
    raise PanelError(
        f"{len(keys)} duplicate (date, ticker) pair(s) over {int(repeated.sum())} rows, "
        f"e.g. {'; '.join(examples)}"
    )


def _check_one_sector(frame: pd.DataFrame) -> None:
    labels = frame.dropna(subset=["sector"]).groupby("ticker")["sector"].unique()
    mixed = labels[labels.map(len) > 1]
    if not mixed.empty:
        examples = "; ".join(
            f"{ticker}: {sorted(map(str, found))}"
            for ticker, found in mixed.head(MAX_EXAMPLES).items()
        )
        raise PanelError(f"{len(mixed)} ticker(s) with more than one sector label, e.g. {examples}")


def _check_universe(close: pd.DataFrame, min_stocks_per_era: int) -> None:
    """At least two tickers, at least one era, and enough priced tickers on every era day."""
    if close.shape[1] < 2:
        raise PanelError(f"a panel needs at least 2 tickers, the file has {close.shape[1]}")
    dates = pd.DatetimeIndex(close.index)
    positions = era_day_positions(dates)
    if len(positions) == 0:
        raise PanelError(
            f"the file's dates ({_day(dates[0])} to {_day(dates[-1])}) form no era: "
            "an era is the last trading day of a complete week (ending on a Friday or later)"
        )
    priced = close.iloc[positions].notna().sum(axis=1)
    short = priced[priced < min_stocks_per_era]
    if not short.empty:
        first = ", ".join(
            f"{_day(d)} ({int(n)} priced)" for d, n in short.head(MAX_EXAMPLES).items()
        )
        raise PanelError(
            f"{len(short)} of {len(positions)} era(s) have fewer than {min_stocks_per_era} "
            f"priced tickers (min_stocks_per_era={min_stocks_per_era}); first: {first}"
        )


# --- building -------------------------------------------------------------------------------


def _wide(frame: pd.DataFrame, column: str) -> pd.DataFrame:
    """Dates × tickers float64 frame of `column` (NaN where a ticker has no row)."""
    wide = frame.pivot(index="date", columns="ticker", values=column).sort_index()
    wide.index = pd.DatetimeIndex(wide.index, name="date")
    wide.columns = pd.Index([str(t) for t in wide.columns], name="ticker")
    return wide.astype("float64")


def _sectors(frame: pd.DataFrame, tickers: pd.Index) -> pd.Series:
    """ticker → its sector label, UNKNOWN_SECTOR where the file gives none."""
    labels: dict[str, str] = {}
    if "sector" in frame:
        known = frame.dropna(subset=["sector"]).drop_duplicates("ticker")
        labels = dict(zip(known["ticker"], known["sector"], strict=True))
    values = [labels.get(str(t), UNKNOWN_SECTOR) for t in tickers]
    return pd.Series(values, index=tickers.copy(), name="sector")


# --- messages -----------------------------------------------------------------------------


def _day(value: Any) -> str:
    return str(pd.Timestamp(value).date())


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value) if value.strip() else "<empty>"
    return "<empty>" if pd.isna(value) else str(value)


def _row_examples(mask: pd.Series, values: pd.Series) -> str:
    """Up to MAX_EXAMPLES offending rows as 'row N: value'."""
    positions = np.flatnonzero(mask.to_numpy())[:MAX_EXAMPLES]
    return ", ".join(f"row {p + 1}: {_show(values.iloc[p])}" for p in positions)


def _where_examples(mask: pd.Series, frame: pd.DataFrame) -> str:
    """Up to MAX_EXAMPLES offending rows as 'row N: TICKER on DATE'."""
    positions = np.flatnonzero(mask.to_numpy())[:MAX_EXAMPLES]
    return ", ".join(
        f"row {p + 1}: {frame['ticker'].iloc[p]} on {_day(frame['date'].iloc[p])}"
        for p in positions
    )


def _value_examples(mask: pd.Series, frame: pd.DataFrame, column: str) -> str:
    """Up to MAX_EXAMPLES offending rows as 'TICKER on DATE: value (row N)'."""
    positions = np.flatnonzero(mask.to_numpy())[:MAX_EXAMPLES]
    return ", ".join(
        f"{frame['ticker'].iloc[p]} on {_day(frame['date'].iloc[p])}: "
        f"{frame[column].iloc[p]:g} (row {p + 1})"
        for p in positions
    )
