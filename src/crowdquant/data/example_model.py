"""The example model: a small gradient-boosting model trained on the published train split.

Its predictions ship with every dataset version, so participants have a baseline to beat
and the audit has a utility figure to set against each attack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from crowdquant.data.config import ExampleModelConfig
from crowdquant.scoring.eras import score_eras

if TYPE_CHECKING:
    from sklearn.ensemble import HistGradientBoostingRegressor


def train_example_model(
    train: pd.DataFrame, features: list[str], config: ExampleModelConfig
) -> HistGradientBoostingRegressor:
    from sklearn.ensemble import HistGradientBoostingRegressor  # slow to import: on use

    stride = -(-len(train) // config.max_rows)
    eras = train["era"].unique()[::stride]
    rows = train[train["era"].isin(eras)]
    model = HistGradientBoostingRegressor(
        max_iter=config.max_iter,
        max_depth=config.max_depth,
        learning_rate=config.learning_rate,
        early_stopping=False,
        random_state=0,
    )
    model.fit(rows[features].to_numpy(np.float32), rows["target"].to_numpy(np.float32))
    return model


def predict_ranked(
    model: HistGradientBoostingRegressor, frame: pd.DataFrame, features: list[str]
) -> pd.DataFrame:
    """Predictions as per-era percentile ranks in (0, 1], indexed by id."""
    raw = pd.Series(model.predict(frame[features].to_numpy(np.float32)), index=frame.index)
    ranked = raw.groupby(frame["era"]).rank(pct=True, method="average")
    return ranked.rename("prediction").to_frame()


def per_era_corr(predictions: pd.Series, targets: pd.Series, eras: pd.Series) -> pd.Series:
    """The tournament's CORR of the predictions within each era."""
    frame = pd.DataFrame({"prediction": predictions, "target": targets, "era": eras}).dropna()
    return score_eras(frame, ["prediction"], "target")[("corr", "prediction")]
