import numpy as np
import pandas as pd
import pytest

from crowdquant.scoring.diagnostics import ValidationEras
from crowdquant.scoring.eras import score_eras

FEATURES = [f"f{i}" for i in range(8)]


@pytest.fixture(scope="module")
def validation() -> pd.DataFrame:
    rng = np.random.default_rng(5)
    n = 5 * 200
    frame = pd.DataFrame(rng.integers(0, 5, (n, len(FEATURES))).astype(np.int8), columns=FEATURES)
    frame["era"] = rng.permutation(np.repeat(["0003", "0001", "0002", "0005", "0004"], 200))
    frame["target"] = rng.choice([0, 0.25, 0.5, 0.75, 1.0], n, p=[0.05, 0.2, 0.5, 0.2, 0.05])
    frame["meta"] = frame["target"] + rng.standard_normal(n)
    frame["prediction"] = np.round(frame["f0"] * 0.1 + frame["target"] + rng.standard_normal(n), 2)
    return frame


def test_prepared_eras_score_like_the_batch_path(validation: pd.DataFrame) -> None:
    prepared = ValidationEras(
        validation["era"], validation["target"], validation["meta"], validation[FEATURES]
    )
    ours = prepared.score(validation["prediction"])
    batch = score_eras(validation, ["prediction"], "target", meta_model="meta", features=FEATURES)
    assert list(ours.index) == ["0001", "0002", "0003", "0004", "0005"]
    expected = batch.droplevel("model", axis=1)[["corr", "mmc", "fnc"]]
    np.testing.assert_allclose(ours.to_numpy(), expected.to_numpy(), atol=1e-12)


def test_a_constant_era_scores_like_a_constant_column(validation: pd.DataFrame) -> None:
    prepared = ValidationEras(
        validation["era"], validation["target"], validation["meta"], validation[FEATURES]
    )
    predictions = validation["prediction"].where(validation["era"] != "0002", 0.5)
    scores = prepared.score(predictions).loc["0002"]
    assert np.isnan(scores["corr"]) and scores["mmc"] == 0 and scores["fnc"] == 0
    with pytest.raises(ValueError, match="NaN"):
        prepared.score(predictions.where(validation["era"] != "0003"))
