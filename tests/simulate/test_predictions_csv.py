"""The CSV file a bot uploads: every value reads back as the very float predicted."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd

from crowdquant.scoring.validation import validate_submission
from crowdquant.simulate.bots import predictions_csv

IDS = pd.Index(["n0a1", "n0b2", "n0c3", "n0d4", "n0e5", "n0f6"], name="id")
VALUES = np.array([0.1 + 0.2, 3.2e-05, 1.0, 0.0, 0.8469424366415668, 1 / 3])


def test_each_value_reads_back_as_the_same_float() -> None:
    read = pd.read_csv(io.BytesIO(predictions_csv(IDS, VALUES)), dtype={"id": str})
    assert read["id"].tolist() == IDS.tolist()
    assert read["prediction"].to_numpy().tobytes() == VALUES.tobytes()


def test_it_is_what_to_csv_writes_read_the_same_way() -> None:
    ours = pd.read_csv(io.BytesIO(predictions_csv(IDS, VALUES)))
    frame = pd.DataFrame({"id": IDS.astype(str), "prediction": VALUES})
    theirs = pd.read_csv(io.BytesIO(frame.to_csv(index=False).encode()))
    pd.testing.assert_frame_equal(ours, theirs)


def test_a_plain_file_the_tournament_accepts_as_it_is() -> None:
    data = predictions_csv(IDS, VALUES)
    assert data.startswith(b"id,prediction\n")
    assert b'"' not in data and b"\r" not in data  # nothing quoted, one line end
    checked = validate_submission(data, IDS, filename="predictions.csv")
    expected = pd.Series(VALUES, index=IDS).sort_index()
    assert checked.predictions.to_numpy().tobytes() == expected.to_numpy().tobytes()
    assert checked.predictions.index.tolist() == expected.index.tolist()
