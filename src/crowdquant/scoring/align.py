"""Aligning predictions, targets and meta models by id, with numerai-tools' 20 % rule.

Ids are intersected after dropping rows with a NaN in any column, then sorted; each input
may lose at most `max_filtered_ratio` of its rows (NaNs, missing and extra ids all count).
Unlike the reference, duplicate ids are refused with a message instead of a bare assert.
"""

from __future__ import annotations

import pandas as pd

DEFAULT_MAX_FILTERED_RATIO = 0.2


class AlignmentError(ValueError):
    """Inputs share too few ids, or an input repeats an id."""


def check_unique_ids(data: pd.Series | pd.DataFrame, name: str) -> None:
    duplicated = data.index[data.index.duplicated()]
    if len(duplicated):
        raise AlignmentError(
            f"{name} has {len(duplicated)} duplicate id(s), e.g. {duplicated[0]!r}"
        )


def aligned_ids(
    inputs: dict[str, pd.Series | pd.DataFrame],
    max_filtered_ratio: float = DEFAULT_MAX_FILTERED_RATIO,
) -> pd.Index:
    """The sorted ids every input has without NaN; refuses inputs losing too many rows."""
    for name, data in inputs.items():
        check_unique_ids(data, name)
    kept = [data.dropna().index for data in inputs.values()]
    ids = kept[0]
    for index in kept[1:]:
        ids = ids.intersection(index)
    for name, data in inputs.items():
        if len(data) == 0 or len(ids) / len(data) < 1 - max_filtered_ratio:
            others = " and ".join(n for n in inputs if n != name)
            raise AlignmentError(
                f"{name} does not have enough overlapping ids with {others}, must have "
                f">= {(1 - max_filtered_ratio) * 100:.1f}% overlapping ids"
            )
    return ids.sort_values()
