"""L3 — feature semantics: which public signal does each released feature stand for?

Upper bound: on rows aligned by ground truth (as after a successful re-identification),
each released feature's maximum |Spearman| against every signal of the public library.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.data.audit.library import spearman_cross


def mean_spearman(released: list[np.ndarray], library: list[np.ndarray]) -> np.ndarray:
    """(features, signals) Spearman matrix per era, averaged over eras.

    released[e]: (rows, features) bins of era e; library[e]: (rows, signals), same rows.
    """
    mats = [spearman_cross(r, p) for r, p in zip(released, library, strict=True) if len(r) > 2]
    if not mats:
        raise ValueError("no era with enough rows to correlate")
    return np.asarray(np.mean(mats, axis=0))


@dataclass(frozen=True)
class Semantics:
    max_abs_rho: np.ndarray  # (features,) best |ρ| against the library
    best: np.ndarray  # (features,) the signal reaching it

    def fraction_above(self, level: float) -> float:
        return float(np.mean(self.max_abs_rho > level))

    def source_recovered(self, truth: np.ndarray) -> float:
        """Share of features whose best signal is their true source."""
        return float(np.mean(self.best == truth))


def feature_semantics(cross: np.ndarray) -> Semantics:
    absolute = np.abs(cross)
    return Semantics(absolute.max(axis=1), absolute.argmax(axis=1))
