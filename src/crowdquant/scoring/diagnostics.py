"""Diagnostics: one submission scored era by era on a validation set prepared once.

Every diagnostics upload of a dataset version is scored against the same validation eras,
targets, example meta model and features. `ValidationEras` does the target-independent and
submission-independent work once — each era's centred and powered targets, Gaussianised
meta model and feature factorisation — so a submission costs only its own ranks and a few
vector products per era. The numbers equal `eras.score_eras` (and numerai-tools per era).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
from threadpoolctl import threadpool_limits

from crowdquant.scoring.contribution import contribution_targets
from crowdquant.scoring.corr import CORR_EXPONENT, corr_targets
from crowdquant.scoring.eras import era_rows
from crowdquant.scoring.neutralise import Neutraliser
from crowdquant.scoring.ranking import FloatArray, gaussianised, power


@dataclass(frozen=True)
class _Era:
    rows: npt.NDArray[np.intp]
    corr_target: FloatArray  # pow1.5(t − t̄), centred, unit length
    mmc_target: FloatArray  # t (×4 in [0, 1]) centred
    meta: FloatArray  # Φ⁻¹(rank(meta model))
    neutraliser: Neutraliser


def _unit_pearson(values: FloatArray, unit_target: FloatArray) -> float:
    """Pearson of `values` with a centred unit-length target; NaN for constant values."""
    centred = values - values.mean()
    norm = float(np.sqrt(centred @ centred))
    return float(centred @ unit_target) / norm if norm > 0 else float("nan")


class ValidationEras:
    def __init__(
        self,
        eras: npt.ArrayLike,
        targets: npt.ArrayLike,
        meta_model: npt.ArrayLike,
        features: npt.ArrayLike,
    ) -> None:
        t = np.asarray(targets, dtype=np.float64)
        meta = np.asarray(meta_model, dtype=np.float64)
        feature_matrix = np.asarray(features)
        if np.isnan(t).any() or np.isnan(meta).any():
            raise ValueError("validation targets and meta model must be complete")
        self.labels: list[object] = []
        self._eras: list[_Era] = []
        with threadpool_limits(limits=1, user_api="blas"):
            for label, rows in era_rows(np.asarray(eras)):
                corr_t = corr_targets(t[rows], True, None)
                corr_t = corr_t - corr_t.mean()
                self.labels.append(label)
                self._eras.append(
                    _Era(
                        rows=rows,
                        corr_target=corr_t / np.sqrt(corr_t @ corr_t),
                        mmc_target=contribution_targets(t[rows]),
                        meta=gaussianised(meta[rows]),
                        neutraliser=Neutraliser(feature_matrix[rows], name="features"),
                    )
                )

    def score(self, predictions: npt.ArrayLike) -> pd.DataFrame:
        """Per-era CORR, MMC and FNC of one (N,) submission in the validation rows' order."""
        p = np.asarray(predictions, dtype=np.float64)
        if np.isnan(p).any():
            raise ValueError("the submission has NaN: every validation row needs a prediction")
        out = np.empty((len(self._eras), 3))
        with threadpool_limits(limits=1, user_api="blas"):
            for i, era in enumerate(self._eras):
                out[i] = self._score_era(p[era.rows], era)
        return pd.DataFrame(
            out, index=pd.Index(self.labels, name="era"), columns=["corr", "mmc", "fnc"]
        )

    @staticmethod
    def _score_era(p: FloatArray, era: _Era) -> tuple[float, float, float]:
        gauss = gaussianised(p)
        corr = _unit_pearson(power(gauss, CORR_EXPONENT), era.corr_target)
        if not np.isfinite(corr):  # a constant era: CORR NaN, MMC and FNC 0, as in batches
            return corr, 0.0, 0.0
        m = era.meta
        orthogonal = gauss - m * (gauss @ m) / (m @ m)
        mmc = float(era.mmc_target @ orthogonal) / len(p)
        residual = era.neutraliser.apply(gauss)
        if not np.isfinite(residual).all() or np.ptp(residual) == 0:  # explained entirely
            return corr, mmc, 0.0
        neutral = power(gaussianised(residual), CORR_EXPONENT)  # ranks ignore the std scaling
        return corr, mmc, _unit_pearson(neutral, era.corr_target)
