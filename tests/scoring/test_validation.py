"""Submission validation: typed errors, accepted edge cases, and parity with numerai-tools."""

from __future__ import annotations

import gzip
import io
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import pytest
from numerai_tools.submissions import validate_submission_numerai

from crowdquant.scoring.validation import (
    ConstantError,
    DuplicateIdsError,
    EmptyFileError,
    FileTooLargeError,
    HeaderError,
    MissingIdsError,
    NanIdsError,
    NanValuesError,
    NotNumericError,
    RangeError,
    SubmissionError,
    SubmissionFileError,
    SubmissionIdsError,
    SubmissionValuesError,
    UnreadableFileError,
    UnsupportedFormatError,
    ValidatedSubmission,
    validate_2017_submission,
    validate_submission,
)

LIVE = ["n007", "n01", "n02", "n03", "n04"]
GOOD = [0.1, 0.3, 0.5, 0.7, 0.9]


def frame(
    ids: Sequence[object] | None = None,
    values: Sequence[object] | None = None,
    column: str = "prediction",
) -> pd.DataFrame:
    return pd.DataFrame(
        {"id": LIVE if ids is None else ids, column: GOOD if values is None else values}
    )


def csv(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def parquet(df: pd.DataFrame, index: bool = False) -> bytes:
    buffer = io.BytesIO()
    df.to_parquet(buffer, index=index)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------------
# Failures: one per problem, with type, code and the words the message must contain

Case = tuple[Callable[[], bytes | pd.DataFrame], type[SubmissionError], str, list[str]]
HEAD, IDS, VAL, FILE = (
    "invalid_submission_headers",
    "invalid_submission_ids",
    "invalid_submission_values",
    "invalid_submission_file",
)

FAILURES: dict[str, Case] = {
    # headers
    "extra column": (
        lambda: csv(frame().assign(era="x")),
        HeaderError,
        HEAD,
        ["found ['id', 'prediction', 'era']", "remove the extra columns"],
    ),
    "id not first": (
        lambda: csv(frame()[["prediction", "id"]]),
        HeaderError,
        HEAD,
        ["found ['prediction', 'id']", "must come first"],
    ),
    "no id column": (
        lambda: csv(frame().drop(columns="id")),
        HeaderError,
        HEAD,
        ["['prediction']"],
    ),
    "wrong prediction name": (
        lambda: csv(frame(column="signal")),
        HeaderError,
        HEAD,
        ["['id', 'signal']", "'probability'"],
    ),
    "case matters": (
        lambda: csv(frame(column="Prediction")),
        HeaderError,
        HEAD,
        ["'Prediction'", "case"],
    ),
    "index written": (
        lambda: frame().to_csv().encode(),
        HeaderError,
        HEAD,
        ["Unnamed: 0", "index=False"],
    ),
    "semicolons": (
        lambda: frame().to_csv(index=False, sep=";").encode(),
        HeaderError,
        HEAD,
        ["'id;prediction'", "delimited"],
    ),
    # ids
    "NaN id in a DataFrame": (
        lambda: frame(ids=[*LIVE[:4], None]),
        NanIdsError,
        IDS,
        ["1 row(s) have no id", "row 5"],
    ),
    "empty id in a CSV": (
        lambda: b"id,prediction\nn007,0.1\n,0.2\n , 0.3\nn01,0.4\n",
        NanIdsError,
        IDS,
        ["2 row(s) have no id", "row 2"],
    ),
    "duplicate live id": (
        lambda: csv(frame(ids=[*LIVE, "n02", "n02"], values=[*GOOD, 0.2, 0.4])),
        DuplicateIdsError,
        IDS,
        ["1 live id(s) appear more than once", "'n02'", "3 times"],
    ),
    "missing live ids": (
        lambda: csv(frame(ids=[*LIVE[:3], "x1"], values=GOOD[:4])),
        MissingIdsError,
        IDS,
        ["2 of 5 live ids are missing", "'n03'", "3 live and 1 other"],
    ),
    "header only": (lambda: b"id,prediction\n", MissingIdsError, IDS, ["5 of 5"]),
    # values
    "text in a CSV": (
        lambda: csv(frame(values=[0.1, 0.2, "high", 0.4, "x"])),
        NotNumericError,
        VAL,
        ["2 prediction(s) are not numbers", "'high'", "id 'n02'"],
    ),
    "text in a non-live CSV row": (
        lambda: csv(frame(ids=[*LIVE, "x"], values=[*GOOD, "?"])),
        NotNumericError,
        VAL,
        ["'?'", "id 'x'"],
    ),
    "strings in a DataFrame": (
        lambda: frame(values=["0.1", "0.2", "0.3", "0.4", "0.5"]),
        NotNumericError,
        VAL,
        ["5 prediction(s) are not numbers", "'0.1'", "'n007'"],
    ),
    "booleans": (
        lambda: frame(values=[True, False, True, False, True]),
        NotNumericError,
        VAL,
        ["True", "'n007'"],
    ),
    "NaN value in a CSV": (
        lambda: csv(frame(values=[0.1, None, 0.5, np.nan, 0.9])),
        NanValuesError,
        VAL,
        ["2 live prediction(s) are NaN", "id 'n01'"],
    ),
    "NaN value in a DataFrame": (
        lambda: frame(values=[0.1, 0.2, 0.5, 0.6, np.nan]),
        NanValuesError,
        VAL,
        ["1 live prediction(s) are NaN", "'n04'"],
    ),
    "above one": (
        lambda: csv(frame(values=[0.1, 0.3, 1.0001, 0.7, 0.9])),
        RangeError,
        VAL,
        ["within [0, 1]", "min 0.1", "max 1.0001", "id 'n02'"],
    ),
    "below zero": (
        lambda: csv(frame(values=[0.1, -1e-7, 0.5, 0.7, 0.9])),
        RangeError,
        VAL,
        ["min -1e-07", "max 0.9", "id 'n01'"],
    ),
    "infinite": (lambda: frame(values=[0.1, 0.2, np.inf, 0.4, 0.5]), RangeError, VAL, ["max inf"]),
    "constant": (
        lambda: csv(frame(values=[0.5] * 5)),
        ConstantError,
        VAL,
        ["must not be constant", "standard deviation is 0", "0.5"],
    ),
    "nearly constant": (
        lambda: frame(values=[0.5, 0.5, 0.5, 0.5, 0.5 + 1e-9]),
        ConstantError,
        VAL,
        ["standard deviation is 4.47e-10"],
    ),
    # file
    "empty bytes": (lambda: b"", EmptyFileError, FILE, ["is empty"]),
    "blank bytes": (lambda: b"  \n\n", EmptyFileError, FILE, ["is empty"]),
    "too large": (lambda: b"x" * 2_000, FileTooLargeError, FILE, ["2,000 bytes", "1,000 bytes"]),
    "gzip": (lambda: gzip.compress(csv(frame())), UnsupportedFormatError, FILE, ["gzip"]),
    "zip / xlsx": (lambda: b"PK\x03\x04rest", UnsupportedFormatError, FILE, ["ZIP", "Excel"]),
    "binary": (lambda: b"\x89PNG\r\n\x1a\n\x00\x00", UnsupportedFormatError, FILE, ["binary"]),
    "not UTF-8": (lambda: b"id,prediction\n\xe9t\xe9,0.5\n", UnreadableFileError, FILE, ["UTF-8"]),
    "ragged rows": (
        lambda: b"id,prediction\nn007,0.1\nn01,0.2,9\n",
        UnreadableFileError,
        FILE,
        ["cannot be parsed as CSV", "line 3"],
    ),
    "ragged first row": (
        lambda: b"id,prediction\nn007,0.1,9\n",
        UnreadableFileError,
        FILE,
        ["cannot be parsed as CSV"],
    ),
    "corrupt parquet": (
        lambda: b"PAR1" + b"\x01" * 40 + b"PAR1",
        UnreadableFileError,
        FILE,
        ["cannot be read as Parquet"],
    ),
}
MAX_BYTES = {"too large": 1_000}


@pytest.mark.parametrize("name", list(FAILURES))
def test_failures_raise_typed_errors(name: str) -> None:
    make, error_type, code, words = FAILURES[name]
    with pytest.raises(error_type) as caught:
        validate_submission(make(), LIVE, max_bytes=MAX_BYTES.get(name, 10**8))
    error = caught.value
    assert type(error) is error_type
    assert isinstance(error, SubmissionError)
    assert isinstance(error, ValueError)
    assert error.code == code
    assert str(error).startswith(f"{code}: ")
    for word in words:
        assert word in str(error), (word, str(error))


@pytest.mark.parametrize(
    ("filename", "data", "error_type", "words"),
    [
        ("preds.xlsx", b"id,prediction\n", UnsupportedFormatError, ["'.xlsx'", ".csv"]),
        ("preds.parquet", b"id,prediction\n", UnreadableFileError, ["'preds.parquet'", "PAR1"]),
    ],
)
def test_filename_suffix(
    filename: str, data: bytes, error_type: type[SubmissionError], words: list[str]
) -> None:
    with pytest.raises(error_type, match="invalid_submission_file") as caught:
        validate_submission(data, LIVE, filename=filename)
    for word in words:
        assert word in str(caught.value)


def test_error_hierarchy_and_codes() -> None:
    groups = {
        SubmissionFileError: "invalid_submission_file",
        HeaderError: "invalid_submission_headers",
        SubmissionIdsError: "invalid_submission_ids",
        SubmissionValuesError: "invalid_submission_values",
    }
    for group, code in groups.items():
        assert issubclass(group, SubmissionError)
        assert group.code == code
    leaves: dict[str, list[type[SubmissionError]]] = {
        "invalid_submission_ids": [NanIdsError, DuplicateIdsError, MissingIdsError],
        "invalid_submission_values": [NotNumericError, NanValuesError, RangeError, ConstantError],
        "invalid_submission_file": [
            EmptyFileError,
            FileTooLargeError,
            UnsupportedFormatError,
            UnreadableFileError,
        ],
    }
    for code, types in leaves.items():
        assert all(leaf.code == code for leaf in types)
    error = MissingIdsError("2 of 5 live ids are missing", count=2)
    assert error.message == "2 of 5 live ids are missing"
    assert error.details == {"count": 2}


def test_bad_live_ids_are_the_callers_error() -> None:
    for live in ([], ["a", None]):
        with pytest.raises(ValueError) as caught:
            validate_submission(csv(frame()), live)  # type: ignore[arg-type]
        assert not isinstance(caught.value, SubmissionError)
    with pytest.raises(TypeError):
        validate_submission("id,prediction", LIVE)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        validate_submission(csv(frame()), "n007")


# ------------------------------------------------------------------------------------------
# Accepted edge cases


def test_accepts_and_returns_sorted_live_predictions() -> None:
    df = frame(ids=["n03", "n007", "n04", "n01", "n02"], values=[0.7, 0.1, 0.9, 0.3, 0.5])
    result = validate_submission(csv(df), pd.Index(LIVE), filename="upload.CSV")
    assert isinstance(result, ValidatedSubmission)
    expected = pd.Series(GOOD, index=pd.Index(LIVE, name="id"), name="prediction")
    pd.testing.assert_series_equal(result.predictions, expected, check_index_type=False)
    assert result.predictions.dtype == np.float64
    assert all(isinstance(i, str) for i in result.predictions.index)
    assert result.prediction_column == "prediction"
    assert result.extra_ids == []
    assert result.n_rows == 5
    with pytest.raises(AttributeError):
        result.n_rows = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "values",
    [
        [0.0, 1.0, 0.5, 0.5, 0.5],
        [0, 1, 1, 0, 1],
        [1.00001, 0.2, 0.3, 0.4, 0.5],
        [-1e-9, 0.2, 0.3, 0.4, 0.5],
        [-1e-9, 0.2, 0.3, 0.4, 1.00001],
        [0.5, 0.5, 0.5, 0.5, 0.5 + 3e-8],
    ],
)
def test_accepts_edge_values(values: list[float]) -> None:
    for data in (frame(values=values), csv(frame(values=values))):
        result = validate_submission(data, LIVE)
        assert result.predictions.tolist() == [float(v) for v in values]


def test_probability_header() -> None:
    result = validate_submission(csv(frame(column="probability")), LIVE)
    assert result.prediction_column == "probability"
    assert result.predictions.name == "probability"


def test_csv_ids_stay_text() -> None:
    live = ["007", "08", "1", "10", "2"]
    data = b"id,prediction\n007,0.1\n08,0.2\n1,0.3\n10,0.4\n2,0.5\n"
    result = validate_submission(data, live)
    assert list(result.predictions.index) == ["007", "08", "1", "10", "2"]
    with pytest.raises(MissingIdsError, match="'007'"):
        validate_submission(data.replace(b"007", b"7"), live)


def test_integer_ids_match_string_live_ids() -> None:
    live = ["3", "10", "2", "1", "20"]
    df = pd.DataFrame({"id": [1, 2, 3, 10, 20], "prediction": GOOD})
    for data in (df, parquet(df)):
        result = validate_submission(data, live)
        assert list(result.predictions.index) == ["1", "10", "2", "20", "3"]
        assert result.predictions.tolist() == [0.1, 0.7, 0.3, 0.9, 0.5]


def test_extra_ids_are_reported_and_may_repeat() -> None:
    df = frame(
        ids=["zz", *LIVE, "aa", "zz"],
        values=[np.nan, *GOOD, 7.0, 0.2],  # non-live rows may hold NaN or be out of range
    )
    for data in (df, csv(df), parquet(df)):
        result = validate_submission(data, LIVE)
        assert result.extra_ids == ["aa", "zz"]
        assert result.n_rows == 8
        assert list(result.predictions.index) == LIVE


def test_single_live_row_has_no_std_and_passes() -> None:
    result = validate_submission(b"id,prediction\na,0.5\nb,0.5\n", ["a"])
    assert result.predictions.tolist() == [0.5]
    assert result.extra_ids == ["b"]


def test_csv_parquet_and_dataframe_agree() -> None:
    rng = np.random.default_rng(0)
    ids = [f"n{i:05d}" for i in rng.permutation(300)]
    live = ids[:250]
    df = pd.DataFrame({"id": ids, "prediction": rng.random(300)})
    results = [
        validate_submission(df, live),
        validate_submission(csv(df), live, filename="p.csv"),
        validate_submission(parquet(df), live, filename="p.parquet"),
        validate_submission(parquet(df), live),  # sniffed from the magic bytes
        validate_submission(parquet(df), live, filename="mislabelled.csv"),
        validate_submission(parquet(df.set_index("id"), index=True), live),
        validate_submission(df.set_index("id"), live),
        validate_submission(b"\xef\xbb\xbf" + csv(df).replace(b"\n", b"\r\n"), live),
    ]
    assert len(results[0].extra_ids) == 50
    for result in results[1:]:
        assert result == results[0]


def test_parquet_float32_and_nullable_values() -> None:
    df = frame().astype({"prediction": "float32"})
    assert validate_submission(parquet(df), LIVE).predictions.dtype == np.float64
    df = frame(values=[0.1, 0.2, 0.3, 0.4, None]).astype({"prediction": "Float64"})
    with pytest.raises(NanValuesError, match="'n04'"):
        validate_submission(parquet(df), LIVE)


def test_object_column_of_numbers() -> None:
    values = pd.Series([0.1, 1, 0.5, np.float32(0.7), 0.9, None], dtype=object)
    df = frame(ids=[*LIVE, "x"], values=list(values)).astype({"prediction": object})
    assert df["prediction"].dtype == object
    result = validate_submission(df, LIVE)
    assert result.predictions.tolist() == pytest.approx([0.1, 1, 0.5, 0.7, 0.9])


def test_size_limit_boundary() -> None:
    data = csv(frame())
    assert validate_submission(data, LIVE, max_bytes=len(data)).n_rows == 5
    with pytest.raises(FileTooLargeError):
        validate_submission(data, LIVE, max_bytes=len(data) - 1)


# ------------------------------------------------------------------------------------------
# Parity with numerai_tools.submissions.validate_submission_numerai


def random_submission(seed: int) -> tuple[list[str], pd.DataFrame, bool]:
    """Live ids, a submission with 0–2 random faults, and whether its ids are integers."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60))
    integer_ids = bool(rng.random() < 0.3)
    pool = rng.choice(10**6, size=n + 10, replace=False) + 1
    all_ids: list[object] = [int(i) if integer_ids else f"n{i}" for i in pool]
    live = [str(i) for i in all_ids[:n]]
    values = rng.random(n + 10)
    df = pd.DataFrame({"id": all_ids[:n], "prediction": values[:n]})
    if rng.random() < 0.5:  # extra rows, possibly repeated
        extra = all_ids[n : n + int(rng.integers(1, 6))]
        extra = extra + extra[:1] if rng.random() < 0.5 else extra
        df = pd.concat([df, pd.DataFrame({"id": extra, "prediction": values[: len(extra)]})])
    df = df.sample(frac=1, random_state=seed).reset_index(drop=True)

    def fault(kind: int) -> None:
        nonlocal df
        is_live = df.iloc[:, 0].astype(str).isin(live).to_numpy()
        live_rows, other_rows = np.flatnonzero(is_live), np.flatnonzero(~is_live)
        row = int(rng.choice(live_rows)) if len(live_rows) else 0
        df.isetitem(1, df.iloc[:, 1].to_numpy(dtype=np.float64))
        if kind == 0:
            df = df.drop(index=df.index[row]).reset_index(drop=True)
        elif kind == 1:
            df = pd.concat([df, df.iloc[[row]]], ignore_index=True)
        elif kind == 2:
            df.isetitem(0, df.iloc[:, 0].to_numpy(dtype=object))
            df.iloc[row, 0] = None
        elif kind == 3:
            df.iloc[row, 1] = np.nan
        elif kind == 4 and len(other_rows):
            df.iloc[int(rng.choice(other_rows)), 1] = np.nan
        elif kind == 5:
            edge = [1.0001, -1e-7, 1.00001, -1e-9, 0.0, 1.0, 2.0, -0.5, np.inf, -np.inf]
            df.iloc[row, 1] = edge[int(rng.integers(len(edge)))]
        elif kind == 6:
            spread = [0.0, 1e-9, 1e-7][int(rng.integers(3))]
            df.isetitem(1, 0.5 + df.iloc[:, 1].to_numpy() * spread)
        elif kind == 7:
            names = [["id", "probability"], ["prediction", "id"], ["id", "Prediction"]]
            df.columns = pd.Index(names[int(rng.integers(len(names)))])
        elif kind == 8:
            df = df.assign(extra=1.0)
        elif kind == 9:
            df.isetitem(1, (df.iloc[:, 1].to_numpy() > 0.5).astype(int))

    for _ in range(int(rng.choice([0, 0, 1, 1, 2]))):
        fault(int(rng.integers(10)))
    return live, df, integer_ids


def reference_outcome(live: list[str], df: pd.DataFrame) -> str | tuple[list[str], pd.Series]:
    """The reference's error code, or its (sorted extra ids, live predictions)."""
    try:
        _, pred_col, filtered, invalid = validate_submission_numerai(pd.Series(live), df.copy())
    except (AssertionError, ValueError) as error:
        return str(error).split(":")[0]
    predictions = filtered.set_index("id")[pred_col].astype(np.float64)
    return sorted(invalid), predictions


def our_outcome(live: list[str], data: bytes | pd.DataFrame) -> str | tuple[list[str], pd.Series]:
    try:
        result = validate_submission(data, live)
    except SubmissionError as error:
        return error.code
    return result.extra_ids, result.predictions


SEEDS = range(240)


@pytest.mark.parametrize("seed", SEEDS)
def test_parity_with_numerai_tools(seed: int) -> None:
    live, df, _ = random_submission(seed)
    # The reference sees the DataFrame itself, or what pandas reads back from the file.
    cases: dict[str, tuple[bytes | pd.DataFrame, pd.DataFrame]] = {
        "frame": (df, df),
        "parquet": (parquet(df), df),
        "csv": (csv(df), pd.read_csv(io.BytesIO(csv(df)))),
    }
    for name, (data, reference_input) in cases.items():
        expected = reference_outcome(live, reference_input)
        ours = our_outcome(live, data)
        if isinstance(expected, str):
            assert ours == expected, (name, ours, expected)
        else:
            assert not isinstance(ours, str), (name, ours, expected)
            assert ours[0] == expected[0]
            pd.testing.assert_series_equal(
                ours[1], expected[1], check_index_type=False, check_names=False
            )
            assert ours[1].name == expected[1].name


def test_parity_batch_covers_every_outcome() -> None:
    outcomes = set()
    for seed in SEEDS:
        live, df, _ = random_submission(seed)
        result = reference_outcome(live, df)
        outcomes.add(result if isinstance(result, str) else "accepted")
    assert outcomes == {
        "accepted",
        "invalid_submission_headers",
        "invalid_submission_ids",
        "invalid_submission_values",
    }


# ------------------------------------------------------------------------------------------
# 2017 rounds: every tournament row (validation, test and live), probabilities inside (0, 1)

ROW_TYPES = pd.Series(
    ["validation"] * 4 + ["test"] * 3 + ["live"] * 3,
    index=[f"v{i}" for i in range(4)] + [f"t{i}" for i in range(3)] + [f"l{i}" for i in range(3)],
)


def legacy(values: dict[str, object] | None = None, column: str = "probability") -> bytes:
    rows = {row_id: 0.3 + 0.04 * k for k, row_id in enumerate(ROW_TYPES.index)}
    rows.update(values or {})
    return csv(pd.DataFrame({"id": list(rows), column: list(rows.values())}))


def test_a_full_2017_submission_gives_every_row_sorted_by_id() -> None:
    result = validate_2017_submission(legacy(), ROW_TYPES)
    assert list(result.predictions.index) == sorted(ROW_TYPES.index)
    assert result.predictions.name == "probability" and result.n_rows == len(ROW_TYPES)
    assert result.predictions["l2"] == pytest.approx(0.3 + 0.04 * 9)
    assert result.extra_ids == []


@pytest.mark.parametrize(
    ("data", "error", "words"),
    [
        (
            csv(pd.DataFrame({"id": ["v0", "v1", "v2", "t0", "t1", "l2"], "probability": 0.5})),
            MissingIdsError,
            "missing 1 validation row, 1 test row, 2 live rows of the round's 4 validation"
            " rows, 3 test rows, 3 live rows, e.g. id 'v3'",
        ),
        (legacy({"t1": 1.2}), RangeError, "probability 1.2 at id 't1' is outside (0, 1)"),
        (legacy({"l0": 0.0, "l1": 1.0}), RangeError, "2 live rows are outside"),
        (legacy({"v0": -0.1}), RangeError, "probability -0.1 at id 'v0'"),
        (legacy({"l0": ""}), NanValuesError, "1 live row have no probability, e.g. id 'l0'"),
        (legacy({"x9": 0.5}), SubmissionIdsError, "not rows of this round's tournament file"),
        (
            legacy() + b"t0,0.5\nl1,0.5\n",
            DuplicateIdsError,
            "1 test row, 1 live row appear more than once",
        ),
        (legacy(column="prediction"), HeaderError, "a 2017 round takes columns"),
        (legacy({"v1": "high"}), NotNumericError, "not numbers"),
    ],
)
def test_a_2017_submission_is_refused_saying_what_is_wrong(
    data: bytes, error: type[SubmissionError], words: str
) -> None:
    with pytest.raises(error) as raised:
        validate_2017_submission(data, ROW_TYPES, filename="preds.csv")
    assert words in raised.value.message


def test_a_2017_submission_of_another_round_is_told_to_use_this_rounds_file() -> None:
    with pytest.raises(SubmissionIdsError) as raised:
        validate_2017_submission(legacy(), ROW_TYPES.rename(lambda i: f"n{i}"))
    assert "10 id(s) are not rows of this round's tournament file" in raised.value.message
    assert "numerai_tournament_data.csv" in raised.value.message
