"""The attacker's public signal library and the cross-sectional transforms the attacks share.

The attacker (Kerckhoffs: knows the pipeline and the feature definitions, not the keys)
holds the public price panel, so it can compute every feature definition itself on any
date. The library is that computation, Gaussian-ranked or binned over the tickers that
were eligible on the date, exactly as the pipeline would see them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
from scipy.special import ndtri
from scipy.stats import norm, rankdata

from crowdquant.data.anonymise import N_FEATURE_BINS, equal_count_bins
from crowdquant.data.features import compute_features, feature_specs
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import eligible_universe, era_grid

CHUNK_CELLS = 40_000_000  # float32 feature values computed at once (≈ 160 MB)


def bin_centres(n_bins: int = N_FEATURE_BINS) -> np.ndarray:
    """E[Z | Z in the b-th of n equal-probability bins] for a standard normal Z."""
    edges = ndtri(np.linspace(0.0, 1.0, n_bins + 1))
    density = norm.pdf(edges)
    return np.asarray((density[:-1] - density[1:]) * n_bins, dtype=np.float64)


def released_scores(bins: np.ndarray) -> np.ndarray:
    """Released int8 bins (rows, features) as the Gaussian scores they stand for."""
    return bin_centres()[np.clip(bins.astype(np.int64), 0, N_FEATURE_BINS - 1)]


def gaussian_columns(values: np.ndarray) -> np.ndarray:
    """Each column ranked over the rows (ties share their mean rank) and mapped through the
    normal quantile; NaN → 0, the score the pipeline's missing bin stands for."""
    x = np.asarray(values, dtype=np.float64)
    valid = np.isfinite(x)
    ranks = rankdata(np.where(valid, x, np.inf), axis=0, method="average")
    n = np.maximum(valid.sum(axis=0, keepdims=True), 1)
    return np.where(valid, ndtri(np.clip((ranks - 0.5) / n, 1e-9, 1 - 1e-9)), 0.0)


def binned_columns(values: np.ndarray, missing_bin: int) -> np.ndarray:
    """Each column in 5 equal-count bins over the rows, as the pipeline bins an era."""
    t = np.ascontiguousarray(values.T, dtype=np.float32)
    ones = np.ones(t.shape, dtype=bool)
    return np.asarray(equal_count_bins(t, ones, np.zeros(t.shape, dtype=np.uint64), missing_bin).T)


def _standardised(x: np.ndarray) -> np.ndarray:
    """Columns centred and scaled to unit variance, as float32 (fast products; constant
    columns become 0)."""
    x = np.asarray(x, dtype=np.float64)
    centred = x - x.mean(axis=0)
    sd = centred.std(axis=0)
    scaled = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    return np.asarray(scaled, dtype=np.float32)


def correlation(x: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns (constant columns correlate 0 with everything)."""
    z = _standardised(x)
    out = np.asarray(z.T @ z, dtype=np.float64) / max(len(z), 1)
    np.fill_diagonal(out, 1.0)
    return out


def cross_correlation(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of every column of a with every column of b, rows aligned."""
    product = np.asarray(_standardised(a).T @ _standardised(b), dtype=np.float64)
    return product / max(len(a), 1)


def spearman_cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman correlation of every column of a with every column of b."""
    return cross_correlation(rankdata(a, axis=0), rankdata(b, axis=0))


@dataclass
class PublicEra:
    """The library on one date, over the tickers eligible that day."""

    day: int  # panel row
    tickers: np.ndarray  # panel column index of each eligible ticker
    raw: np.ndarray  # (tickers, signals) float32, NaN where undefined
    missing_bin: int
    _gauss: np.ndarray | None = field(default=None, repr=False)
    _bins: np.ndarray | None = field(default=None, repr=False)

    @property
    def gaussian(self) -> np.ndarray:
        if self._gauss is None:
            self._gauss = gaussian_columns(self.raw)
        return self._gauss

    @property
    def bins(self) -> np.ndarray:
        if self._bins is None:
            self._bins = binned_columns(self.raw, self.missing_bin)
        return self._bins

    def rows(self, tickers: np.ndarray) -> np.ndarray:
        """Positions in this era of the given panel tickers (all must be eligible)."""
        lookup = np.full(int(max(self.tickers.max(initial=0), tickers.max(initial=0))) + 1, -1)
        lookup[self.tickers] = np.arange(len(self.tickers))
        found = lookup[tickers]
        if (found < 0).any():
            raise ValueError("some released tickers were not eligible on the era's date")
        return np.asarray(found)


class PublicLibrary:
    """compute_features on the public panel, on demand, one era date at a time."""

    def __init__(self, panel: Panel, missing_bin: int):
        self.panel = panel
        self.missing_bin = missing_bin
        specs = feature_specs(panel.volume is not None)
        self.names = [s.name for s in specs]
        self.groups = [s.group for s in specs]
        grid = era_grid(panel)
        self.candidate_days = np.asarray(grid.days)
        self.candidate_dates = list(grid.dates)
        self._cache: dict[int, PublicEra] = {}

    def __len__(self) -> int:
        return len(self.names)

    def eras(self, days: np.ndarray, *, cache: bool = True) -> Iterator[PublicEra]:
        """The library on each day (panel rows), computed in chunks."""
        days = np.asarray(days, dtype=np.int64)
        step = max(8, CHUNK_CELLS // max(len(self.panel.tickers) * len(self), 1))
        for start in range(0, len(days), step):
            chunk = days[start : start + step]
            todo = np.array([d for d in chunk if d not in self._cache], dtype=np.int64)
            fresh: dict[int, PublicEra] = {}
            if len(todo):
                raw = compute_features(self.panel, todo)
                eligible = eligible_universe(self.panel, todo)
                for k, day in enumerate(todo):
                    cols = np.flatnonzero(eligible[k])
                    fresh[int(day)] = PublicEra(
                        int(day), cols, np.asarray(raw[k, cols], dtype=np.float32), self.missing_bin
                    )
                del raw
            for day in chunk:
                era = self._cache.get(int(day)) or fresh[int(day)]
                if cache:
                    self._cache[int(day)] = era
                yield era

    def era(self, day: int) -> PublicEra:
        return next(self.eras(np.array([day])))

    def spaced_days(self, count: int) -> np.ndarray:
        """Up to `count` candidate era days spread evenly over the panel."""
        n = len(self.candidate_days)
        picks = np.unique(np.linspace(0, n - 1, min(count, n)).round().astype(np.int64))
        return np.asarray(self.candidate_days[picks])

    def mean_binned_correlation(self, count: int = 64) -> np.ndarray:
        """The binned library's feature-feature correlation, averaged over spread dates.

        Needs no knowledge of any published era's date.
        """
        total = np.zeros((len(self), len(self)))
        used = 0
        for era in self.eras(self.spaced_days(count), cache=False):
            if len(era.tickers) < 3:
                continue
            total += correlation(era.bins)
            used += 1
        return total / max(used, 1)
