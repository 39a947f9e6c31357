"""Id alignment: the 20 % rule, NaN rows, sorting and duplicate ids, against numerai-tools."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from numerai_tools import scoring as nt

from crowdquant.scoring.align import AlignmentError, aligned_ids


def series(ids: list[str], values: list[float] | None = None) -> pd.Series:
    return pd.Series(values if values is not None else np.arange(len(ids), dtype=float), ids)


IDS = [f"id{i:02d}" for i in range(10)]


def test_ids_are_intersected_and_sorted() -> None:
    a = series(IDS[::-1])
    b = series([*IDS[1:], "zz"])
    ids = aligned_ids({"a": a, "b": b})
    assert list(ids) == IDS[1:]
    ref_a, _ = nt.filter_sort_index(a, b)
    assert list(ref_a.index) == list(ids)


def test_a_nan_in_any_column_drops_the_row() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "y": np.arange(10.0)}, index=IDS)
    frame.loc["id03", "y"] = np.nan
    ids = aligned_ids({"frame": frame, "s": series(IDS)})
    assert "id03" not in ids
    assert len(ids) == 9


@pytest.mark.parametrize(("lost", "fails"), [(2, False), (3, True)])
def test_twenty_percent_rule_matches_the_reference(lost: int, fails: bool) -> None:
    a = series(IDS)
    b = series(IDS[lost:], None)
    if fails:
        with pytest.raises(AssertionError):
            nt.filter_sort_index(a, b)
        with pytest.raises(AlignmentError, match=r"a does not have enough overlapping ids"):
            aligned_ids({"a": a, "b": b})
    else:
        nt.filter_sort_index(a, b)
        assert len(aligned_ids({"a": a, "b": b})) == 10 - lost


def test_nan_missing_and_extra_ids_share_one_budget() -> None:
    a = series(IDS, [np.nan] + [1.0] * 9)  # one NaN
    b = series([*IDS[1:9], "x1"])  # one missing (id09) besides id00, one extra
    assert len(aligned_ids({"a": a, "b": b})) == 8  # 8/10 and 8/9: allowed
    with pytest.raises(AlignmentError):
        aligned_ids({"a": a, "b": b}, max_filtered_ratio=0.15)


def test_duplicate_ids_are_refused_naming_the_input() -> None:
    dup = series([*IDS, "id04"])
    with pytest.raises(AlignmentError, match=r"predictions has 1 duplicate id\(s\), e.g. 'id04'"):
        aligned_ids({"targets": series(IDS), "predictions": dup})


def test_empty_input_is_refused() -> None:
    with pytest.raises(AlignmentError):
        aligned_ids({"a": series([]), "b": series(IDS)})
