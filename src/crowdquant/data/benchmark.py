"""Benchmark models: small LightGBM models on the main target and others, as Numerai ships.

Each model learns one published target from every feature of the train split. Its
predictions are published per era as percentile ranks: on train out of fold (two halves of
the eras, each predicted by a model fitted on the other), on validation and live by the
model fitted on the whole train split. The fitted models stay with the operator, so each
round's live era gets their predictions too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crowdquant.data.config import BenchmarkConfig


def benchmark_column(version: str, target: str) -> str:
    """`v53_lgbm_ender20` for version `v5.3` and target `target_ender_20`."""
    prefix = re.sub(r"[^0-9A-Za-z]", "", version).lower() or "v"
    return f"{prefix}_lgbm_{target.removeprefix('target_').replace('_', '')}"


@dataclass(frozen=True)
class BenchmarkModels:
    """The fitted models, by the target each learnt (operator only), and the features."""

    models: dict[str, str]  # target → LightGBM model text
    features: list[str]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per-era percentile ranks of each model's predictions; columns are the targets."""
        import lightgbm  # slow to import: on use

        x = frame[self.features].to_numpy(np.float32)
        raw = {
            target: lightgbm.Booster(model_str=text).predict(x)
            for target, text in self.models.items()
        }
        return _ranked(pd.DataFrame(raw, index=frame.index), frame["era"])


def _ranked(raw: pd.DataFrame, eras: pd.Series) -> pd.DataFrame:
    ranked = raw.groupby(eras.to_numpy()).rank(pct=True, method="average")
    ranked.insert(0, "era", eras.to_numpy())
    return ranked


def _params(config: BenchmarkConfig) -> dict[str, object]:
    return {
        "objective": "regression",
        "learning_rate": config.learning_rate,
        "num_leaves": config.num_leaves,
        "max_depth": config.max_depth,
        "feature_fraction": config.colsample_bytree,
        "num_threads": config.n_jobs,
        "seed": 0,
        "deterministic": True,
        "force_row_wise": True,
        "max_bin": 7,  # the features hold 5 values
        "verbose": -1,
    }


class _Fitter:
    """Fits models on subsets of the train rows (every n-th era, to stay under
    `max_rows`), binning the features once for all of them."""

    def __init__(self, train: pd.DataFrame, features: list[str], config: BenchmarkConfig):
        import lightgbm  # slow to import: on use

        stride = -(-len(train) // config.max_rows)
        self.rows = train[train["era"].isin(train["era"].unique()[::stride])]
        self.features, self.params = features, _params(config)
        self.rounds = config.n_estimators
        self.binned = lightgbm.Dataset(
            self.rows[features].to_numpy(np.float32),
            label=np.zeros(len(self.rows), dtype=np.float32),
            params=self.params,
            free_raw_data=False,
        ).construct()

    def fit(self, eras: np.ndarray, targets: list[str]) -> BenchmarkModels:
        import lightgbm  # slow to import: on use

        in_eras = self.rows["era"].isin(eras).to_numpy()
        models: dict[str, str] = {}
        for target in targets:
            labels = self.rows[target].to_numpy(np.float32)
            used = np.flatnonzero(in_eras & np.isfinite(labels))
            if len(used) == 0:
                raise ValueError(f"no train rows have {target} to fit a benchmark model on")
            data = self.binned.subset(used.tolist()).construct()
            data.set_label(labels[used])
            booster = lightgbm.train(self.params, data, num_boost_round=self.rounds)
            models[target] = str(booster.model_to_string())
        return BenchmarkModels(models, self.features)


def train_benchmark_models(
    train: pd.DataFrame, features: list[str], targets: list[str], config: BenchmarkConfig
) -> tuple[BenchmarkModels, pd.DataFrame]:
    """The models fitted on all of `train`, and their out-of-fold predictions of it."""
    fitter = _Fitter(train, features, config)
    eras = train["era"].unique()
    halves = [eras[: len(eras) // 2], eras[len(eras) // 2 :]]
    out_of_fold = []
    if len(eras) > 1:
        for held_out, fitted_on in (halves, halves[::-1]):
            part = fitter.fit(fitted_on, targets)
            out_of_fold.append(part.predict(train[train["era"].isin(held_out)]))
    models = fitter.fit(eras, targets)
    predictions = pd.concat(out_of_fold) if out_of_fold else models.predict(train)
    return models, predictions.loc[train.index]
