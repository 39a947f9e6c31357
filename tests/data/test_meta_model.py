"""The validation meta model: a round's real meta model by ticker, the blend elsewhere."""

from __future__ import annotations

import pandas as pd
import pytest

from crowdquant.data.meta_model import prediction_blend, validation_meta_model

VALIDATION = pd.DataFrame(
    {"era": ["0100", "0100", "0100", "0101", "0101"], "ticker": ["A", "B", "C", "A", "B"]},
    index=pd.Index(["n1", "n2", "n3", "n4", "n5"], name="id"),
)


def test_blend_is_the_mean_of_per_era_ranks() -> None:
    first = pd.Series([0.1, 0.9, 0.5, 0.2, 0.3], index=VALIDATION.index)
    second = pd.Series([3.0, 1.0, 2.0, 9.0, 1.0], index=VALIDATION.index)
    blend = prediction_blend(VALIDATION["era"], [first, second])
    # era 0100: ranks (1/3, 1, 2/3) and (1, 1/3, 2/3); era 0101: (1/2, 1) and (1, 1/2)
    assert blend.tolist() == pytest.approx([2 / 3, 2 / 3, 2 / 3, 0.75, 0.75])
    with pytest.raises(ValueError, match="at least one prediction"):
        prediction_blend(VALIDATION["era"], [])


def test_a_resolved_rounds_meta_model_replaces_the_blend_of_its_era() -> None:
    blend = pd.Series([0.5] * 5, index=VALIDATION.index)
    by_ticker = pd.Series({"A": 0.9, "C": 0.1, "Z": 0.7})  # B was not in the round
    frame, sources = validation_meta_model(VALIDATION, blend, {"0100": (7, by_ticker)})
    assert list(frame.columns) == ["numerai_meta_model"] and frame.index.name == "id"
    assert frame["numerai_meta_model"].tolist() == [0.9, 0.5, 0.1, 0.5, 0.5]
    assert sources == {"0100": "round 7", "0101": "blend"}
    # a round that shares no ticker with its era leaves the blend
    _, sources = validation_meta_model(VALIDATION, blend, {"0101": (8, pd.Series({"Q": 1.0}))})
    assert sources == {"0100": "blend", "0101": "blend"}
