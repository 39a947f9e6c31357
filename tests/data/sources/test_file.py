"""Operator panel files: CSV and Parquet loading, and one clear error per problem."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.panel import UNKNOWN_SECTOR, Panel, PanelError, equal_weight_market
from crowdquant.data.sources.file import load_panel_file

N_TICKERS = 15
DAYS = pd.bdate_range("2024-01-01", periods=60)  # 12 complete Monday-to-Friday weeks
SECTORS = ("Energy", "Financials", "Health Care")


def long_frame(n_tickers: int = N_TICKERS, days: pd.DatetimeIndex = DAYS) -> pd.DataFrame:
    """A valid long-format panel, date-major: row i is day i // n_tickers, ticker i % n."""
    rng = np.random.default_rng(0)
    tickers = [f"T{k:02d}" for k in range(n_tickers)]
    steps = rng.normal(0.0, 0.01, size=(len(days), n_tickers))
    close = 100.0 * np.exp(np.cumsum(steps, axis=0))
    volume = rng.integers(1_000, 100_000, size=(len(days), n_tickers)).astype(float)
    return pd.DataFrame(
        {
            "date": np.repeat(days.strftime("%Y-%m-%d"), n_tickers),
            "ticker": np.tile(tickers, len(days)),
            "close": close.ravel(),
            "volume": volume.ravel(),
            "sector": np.tile([SECTORS[k % 3] for k in range(n_tickers)], len(days)),
        }
    )


def write(frame: pd.DataFrame, path: Path) -> Path:
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def assert_same_panel(a: Panel, b: Panel) -> None:
    pd.testing.assert_frame_equal(a.close, b.close)
    if a.volume is None or b.volume is None:
        assert a.volume is None and b.volume is None
    else:
        pd.testing.assert_frame_equal(a.volume, b.volume)
    pd.testing.assert_series_equal(a.sector, b.sector)
    pd.testing.assert_series_equal(a.market, b.market)


# --- valid files ----------------------------------------------------------------------------


def test_valid_csv(tmp_path: Path) -> None:
    panel = load_panel_file(write(long_frame(), tmp_path / "panel.csv"))
    assert panel.name == "file:panel.csv"
    assert panel.close.shape == (60, N_TICKERS)
    assert (panel.close.dtypes == np.float64).all()
    assert panel.dates.dtype == np.dtype("datetime64[ns]")
    assert panel.dates[0] == pd.Timestamp("2024-01-01")
    assert panel.tickers == [f"T{k:02d}" for k in range(N_TICKERS)]
    assert not panel.close.isna().any().any()
    expected = long_frame().pivot(index="date", columns="ticker", values="close")
    np.testing.assert_allclose(panel.close.to_numpy(), expected.to_numpy())
    pd.testing.assert_series_equal(panel.market, equal_weight_market(panel.close))
    assert panel.volume is not None and panel.volume.shape == panel.close.shape
    assert panel.sector["T00"] == "Energy" and panel.sector["T04"] == "Financials"


@pytest.mark.parametrize("suffix", [".parquet", ".pq"])
def test_csv_and_parquet_give_equal_panels(tmp_path: Path, suffix: str) -> None:
    frame = long_frame()
    from_csv = load_panel_file(write(frame, tmp_path / "panel.csv"))
    typed = frame.assign(date=pd.to_datetime(frame["date"]))  # Parquet keeps real dates
    from_parquet = load_panel_file(write(typed, tmp_path / f"panel{suffix}"))
    assert from_parquet.name == f"file:panel{suffix}"
    assert_same_panel(from_csv, from_parquet)
    string_dates = load_panel_file(write(frame, tmp_path / f"strings{suffix}"))
    assert_same_panel(from_csv, string_dates)


def test_without_volume_or_sector(tmp_path: Path) -> None:
    frame = long_frame().drop(columns=["volume", "sector"])
    panel = load_panel_file(write(frame, tmp_path / "panel.csv"))
    assert panel.volume is None
    assert (panel.sector == UNKNOWN_SECTOR).all()
    assert list(panel.sector.index) == panel.tickers


def test_missing_rows_and_volumes_become_nan(tmp_path: Path) -> None:
    frame = long_frame()
    frame.loc[3, "volume"] = np.nan
    frame.loc[5, "sector"] = ""  # a blank label does not conflict with the others
    frame = frame.drop(index=[20, 21])  # T05 and T06 have no row on day 1
    panel = load_panel_file(write(frame, tmp_path / "panel.csv"))
    assert panel.volume is not None
    assert np.isnan(panel.volume.loc["2024-01-01", "T03"])
    assert panel.volume.notna().sum().sum() == 60 * N_TICKERS - 3
    assert panel.close.loc["2024-01-02", ["T05", "T06"]].isna().all()
    assert panel.close.notna().sum().sum() == 60 * N_TICKERS - 2
    assert panel.sector["T05"] == SECTORS[2]


def test_text_cells_are_never_read_as_missing(tmp_path: Path) -> None:
    frame = long_frame()
    frame["ticker"] = frame["ticker"].replace({"T00": "NA", "T01": "NaN"})
    frame["sector"] = frame["sector"].where(frame["ticker"] != "NA", "None")
    panel = load_panel_file(write(frame, tmp_path / "panel.csv"))
    assert {"NA", "NaN"} <= set(panel.tickers)
    assert panel.sector["NA"] == "None"
    assert not panel.close.isna().any().any()


def test_headers_are_case_insensitive_and_extras_ignored(tmp_path: Path) -> None:
    frame = long_frame()
    reference = load_panel_file(write(frame, tmp_path / "panel.csv"))
    renamed = frame.rename(
        columns={
            "date": " Date ",
            "ticker": "TICKER",
            "close": "Close ",
            "volume": "VoLuMe",
            "sector": "Sector",
        }
    ).assign(notes="ignored", Open=1.0)
    for name in ("renamed.csv", "renamed.parquet"):
        assert_same_panel(reference, load_panel_file(write(renamed, tmp_path / name)))


def test_dates_with_times_and_whitespace_are_normalised(tmp_path: Path) -> None:
    frame = long_frame()
    reference = load_panel_file(write(frame, tmp_path / "panel.csv"))
    frame["date"] = " " + frame["date"] + " 16:00:00"
    frame["ticker"] = frame["ticker"] + " "
    assert_same_panel(reference, load_panel_file(write(frame, tmp_path / "timed.csv")))


def test_loader_writes_nothing(tmp_path: Path) -> None:
    write(long_frame(), tmp_path / "panel.csv")
    before = sorted(p.name for p in tmp_path.iterdir())
    load_panel_file(tmp_path / "panel.csv")
    with pytest.raises(PanelError):
        load_panel_file(tmp_path / "panel.csv", min_stocks_per_era=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


# --- broken files ---------------------------------------------------------------------------


def _file_cases() -> list[tuple[str, Callable[[Path], Path], list[str]]]:
    def missing(d: Path) -> Path:
        return d / "absent.csv"

    def wrong_extension(d: Path) -> Path:
        return write(long_frame(), d / "panel.csv").rename(d / "panel.txt")

    def empty(d: Path) -> Path:
        (d / "empty.csv").write_bytes(b"")
        return d / "empty.csv"

    def blank(d: Path) -> Path:
        (d / "blank.csv").write_text("\n\n  \n")
        return d / "blank.csv"

    def header_only(d: Path) -> Path:
        (d / "header.csv").write_text("date,ticker,close\n")
        return d / "header.csv"

    def garbage_parquet(d: Path) -> Path:
        (d / "bad.parquet").write_bytes(b"this is not parquet at all")
        return d / "bad.parquet"

    def ragged_csv(d: Path) -> Path:
        (d / "ragged.csv").write_text("date,ticker,close\n2024-01-01,A,1.0\n2024-01-02,A,1,2,3\n")
        return d / "ragged.csv"

    def extra_fields(d: Path) -> Path:
        (d / "extra.csv").write_text("date,ticker,close\n2024-01-01,A,1.0,7\n2024-01-02,A,1,8\n")
        return d / "extra.csv"

    def not_utf8(d: Path) -> Path:
        (d / "latin.csv").write_bytes(b"date,ticker,close\n2024-01-01,\xe9\xff\xfe,1.0\n")
        return d / "latin.csv"

    return [
        ("not-found", missing, ["not found", "absent.csv"]),
        ("unsupported-extension", wrong_extension, ["unsupported", ".txt"]),
        ("empty-file", empty, ["empty.csv", "is empty"]),
        ("blank-file", blank, ["blank.csv", "is empty"]),
        ("header-only", header_only, ["header.csv", "no data rows"]),
        ("unreadable-parquet", garbage_parquet, ["cannot read", "bad.parquet"]),
        ("unreadable-csv", ragged_csv, ["cannot read", "ragged.csv"]),
        ("extra-fields", extra_fields, ["cannot read", "extra.csv"]),
        ("not-utf8", not_utf8, ["cannot read", "latin.csv"]),
    ]


@pytest.mark.parametrize(
    ("make", "words"), [c[1:] for c in _file_cases()], ids=[c[0] for c in _file_cases()]
)
def test_unusable_file(tmp_path: Path, make: Callable[[Path], Path], words: list[str]) -> None:
    path = make(tmp_path)
    with pytest.raises(PanelError) as info:
        load_panel_file(path)
    for word in words:
        assert word in str(info.value)


def _set(rows: list[int], column: str, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    def corrupt(frame: pd.DataFrame) -> pd.DataFrame:
        frame[column] = frame[column].astype(object)
        frame.loc[rows, column] = value
        return frame

    return corrupt


def _bad_dates(frame: pd.DataFrame) -> pd.DataFrame:
    for k, row in enumerate([3, 10, 20, 30, 40, 50, 60]):
        frame.loc[row, "date"] = f"bad-{k}"
    frame.loc[70, "date"] = ""
    return frame


def _two_sectors(frame: pd.DataFrame) -> pd.DataFrame:
    frame.loc[15, "sector"] = "Utilities"  # T00 on day 1; otherwise Energy
    return frame


def _duplicates(frame: pd.DataFrame) -> pd.DataFrame:
    return pd.concat([frame, frame.iloc[[0, 16]], frame.iloc[[0]]], ignore_index=True)


def _thin_era(frame: pd.DataFrame) -> pd.DataFrame:
    thin = (frame["date"] == "2024-01-12") & (frame["ticker"] >= "T07")  # 7 left that Friday
    return frame.loc[~thin].reset_index(drop=True)


def _one_ticker(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame["ticker"] == "T00"].reset_index(drop=True)


def _no_complete_week(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.loc[frame["date"] <= "2024-01-03"].reset_index(drop=True)  # Mon-Wed only


def _drop(*columns: str) -> Callable[[pd.DataFrame], pd.DataFrame]:
    return lambda frame: frame.drop(columns=list(columns))


def _repeat_close(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(CLOSE=frame["close"])


CONTENT_CASES: list[tuple[str, Callable[[pd.DataFrame], pd.DataFrame], list[str]]] = [
    (
        "missing-columns",
        _drop("ticker", "close"),
        ["missing required column", "'ticker'", "'close'"],
    ),
    ("repeated-column", _repeat_close, ["more than once", "'close'"]),
    (
        "unparseable-dates",
        _bad_dates,
        ["8 unparseable date", "row 4: 'bad-0'", "row 11: 'bad-1'", "row 41: 'bad-4'"],
    ),
    ("missing-ticker", _set([7], "ticker", " "), ["missing ticker", "row 8: <empty>"]),
    ("non-numeric-close", _set([5, 9], "close", "abc"), ["2 non-numeric", "close", "'abc'"]),
    ("infinite-close", _set([5], "close", "inf"), ["infinite", "close", "row 6: inf"]),
    ("non-numeric-volume", _set([2], "volume", "lots"), ["non-numeric", "volume", "'lots'"]),
    (
        "missing-close",
        _set([16, 17], "close", ""),
        ["2 row(s)", "missing", "close", "T01", "2024-01-02"],
    ),
    ("zero-close", _set([1], "close", 0.0), ["non-positive", "T01 on 2024-01-01: 0", "row 2"]),
    ("negative-close", _set([31], "close", -2.5), ["non-positive", "T01 on 2024-01-03: -2.5"]),
    ("negative-volume", _set([4], "volume", -10.0), ["negative volume", "T04 on 2024-01-01: -10"]),
    ("duplicate-rows", _duplicates, ["2 duplicate (date, ticker)", "T00 on 2024-01-01", "rows 1,"]),
    ("two-sectors", _two_sectors, ["more than one sector", "T00", "Energy", "Utilities"]),
    ("too-few-stocks", _thin_era, ["1 of 12 era", "fewer than 10", "2024-01-12 (7 priced)"]),
    ("one-ticker", _one_ticker, ["at least 2 tickers", "has 1"]),
    ("no-era", _no_complete_week, ["no era", "2024-01-01", "2024-01-03"]),
]


@pytest.mark.parametrize(
    ("corrupt", "words"), [c[1:] for c in CONTENT_CASES], ids=[c[0] for c in CONTENT_CASES]
)
def test_malformed_content(
    tmp_path: Path, corrupt: Callable[[pd.DataFrame], pd.DataFrame], words: list[str]
) -> None:
    path = write(corrupt(long_frame()), tmp_path / "panel.csv")
    with pytest.raises(PanelError) as info:
        load_panel_file(path)
    message = str(info.value)
    for word in words:
        assert word in message, message


def test_unparseable_dates_show_at_most_five(tmp_path: Path) -> None:
    path = write(_bad_dates(long_frame()), tmp_path / "panel.csv")
    with pytest.raises(PanelError, match="unparseable") as info:
        load_panel_file(path)
    assert "bad-4" in str(info.value) and "bad-5" not in str(info.value)


def test_min_stocks_per_era_threshold(tmp_path: Path) -> None:
    path = write(long_frame(), tmp_path / "panel.csv")
    assert load_panel_file(path, min_stocks_per_era=15).close.shape[1] == N_TICKERS
    with pytest.raises(PanelError, match=r"12 of 12 era.*min_stocks_per_era=16"):
        load_panel_file(path, min_stocks_per_era=16)


def test_typed_parquet_problems(tmp_path: Path) -> None:
    frame = long_frame().assign(date=lambda f: pd.to_datetime(f["date"]))
    missing = frame.copy()
    missing.loc[3, "close"] = np.nan
    with pytest.raises(PanelError, match="missing"):
        load_panel_file(write(missing, tmp_path / "missing.parquet"))
    negative = frame.copy()
    negative.loc[3, "close"] = -1.0
    with pytest.raises(PanelError, match=r"non-positive.*T03 on 2024-01-01"):
        load_panel_file(write(negative, tmp_path / "negative.parquet"))
