"""L2 — re-identification: match one era's released rows to public tickers.

The attacker computes the public signal library on the era's date, puts released features
and library signals side by side, and assigns rows to tickers by the Hungarian algorithm on
the squared distance between Gaussian scores (released bins → the mean normal score of
their quintile).

Case (a) is given the correspondence (the upper bound: the operator's feature map, or a
linear map fitted on ground-truth rows). Case (b) estimates it without ground truth: graph
matching of the released features' correlation matrix against the library's, then a linear
map self-trained on its own confident matches (which also undoes secret mixing, a linear
map within each group).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from crowdquant.data.audit.library import released_scores

_GROUP_MISMATCH = 1e3  # cost of matching features whose published groups differ in size


@dataclass(frozen=True)
class Correspondence:
    """The library signal (column) standing behind each released feature, and its sign."""

    columns: np.ndarray  # (features,) int
    signs: np.ndarray  # (features,) ±1.0

    def flipped(self) -> Correspondence:
        return Correspondence(self.columns, -self.signs)

    def accuracy(self, truth: Correspondence) -> float:
        return float(np.mean(self.columns == truth.columns))


def known_correspondence(
    features: list[str], feature_map: list[dict[str, str]], library_names: list[str]
) -> Correspondence | None:
    """From the operator's feature map; None when sources are not library signals (mixing)."""
    source = {f["name"]: f["source"] for f in feature_map}
    index = {name: i for i, name in enumerate(library_names)}
    columns = [index.get(source.get(name, ""), -1) for name in features]
    if min(columns, default=-1) < 0:
        return None
    return Correspondence(np.array(columns, dtype=np.int64), np.ones(len(columns)))


def correlated_correspondence(cross: np.ndarray) -> Correspondence:
    """Each released feature's best |correlated| signal, from a (features, signals) matrix."""
    columns = np.abs(cross).argmax(axis=1)
    signs = np.sign(cross[np.arange(len(columns)), columns])
    return Correspondence(columns.astype(np.int64), np.where(signs == 0, 1.0, signs))


def _group_penalty(released_groups: list[str], library_groups: list[str]) -> np.ndarray:
    def sizes(groups: list[str]) -> np.ndarray:
        _, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
        return np.asarray(counts[inverse])

    return np.asarray(
        (sizes(released_groups)[:, None] != sizes(library_groups)[None, :]) * _GROUP_MISMATCH
    )


def _profile_cost(released: np.ndarray, library: np.ndarray) -> np.ndarray:
    """L1 distance between each feature's sorted |correlation| profile (self excluded)."""

    def profiles(c: np.ndarray) -> np.ndarray:
        a = np.abs(c).copy()
        np.fill_diagonal(a, -np.inf)
        return np.asarray(-np.sort(-a, axis=1)[:, :-1])

    p, q = profiles(released), profiles(library)
    k = min(p.shape[1], q.shape[1])
    return np.asarray(np.abs(p[:, None, :k] - q[None, :, :k]).sum(axis=2))


def _refine_cost(released: np.ndarray, library: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Σ_{k≠i} (C_r[i,k] − C_p[j, π(k)])²: how well j fits i given the other matches."""
    b = library[:, columns]  # (signals, features)
    full = (released**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * released @ b.T
    diagonal = (np.diag(released)[:, None] - b.T) ** 2
    return np.asarray(full - diagonal)


def estimate_correspondence(
    released_corr: np.ndarray,
    library_corr: np.ndarray,
    released_groups: list[str],
    library_groups: list[str],
    *,
    signed: bool = True,
    iterations: int = 30,
) -> Correspondence:
    """Graph matching of two feature-feature correlation matrices, no ground truth used.

    Start from each feature's sorted |correlation| profile (permutation invariant), then
    refine: given the current matches, re-assign every feature to the signal whose
    correlations with the other matched signals best reproduce its own (a linearised
    quadratic-assignment step), until nothing changes. Published group labels restrict
    matches to groups of the same size. `signed=False` compares |correlations| (signs are
    meaningless after mixing); signs are then estimated by agreement with the matches.
    """
    r = released_corr if signed else np.abs(released_corr)
    p = library_corr if signed else np.abs(library_corr)
    penalty = _group_penalty(released_groups, library_groups)
    _, columns = linear_sum_assignment(_profile_cost(r, p) + penalty)
    for _ in range(iterations):
        _, new = linear_sum_assignment(_refine_cost(r, p, columns) + penalty)
        if np.array_equal(new, columns):
            break
        columns = new
    signs = np.ones(len(columns))
    if not signed:
        matched = library_corr[np.ix_(columns, columns)]
        off = released_corr * matched
        np.fill_diagonal(off, 0.0)
        for _ in range(10):
            new_signs = np.sign(off @ signs)
            new_signs[new_signs == 0] = 1.0
            if np.array_equal(new_signs, signs):
                break
            signs = new_signs
    return Correspondence(np.asarray(columns, dtype=np.int64), signs)


def squared_distances(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance between the rows of x and of y (float32 products)."""
    x32, y32 = x.astype(np.float32), y.astype(np.float32)
    d = (x32**2).sum(1)[:, None] + (y32**2).sum(1)[None, :] - 2.0 * (x32 @ y32.T)
    return np.asarray(np.maximum(d, 0.0))


def distances(
    released_bins: np.ndarray, library_gauss: np.ndarray, corr: Correspondence
) -> np.ndarray:
    """Squared distance between released rows' scores and library rows (tickers) read
    through a correspondence."""
    y = library_gauss[:, corr.columns] * corr.signs[None, :]
    return squared_distances(released_scores(released_bins), y)


@dataclass(frozen=True)
class ReidScores:
    top1: float  # Hungarian assignment hits
    top1_nearest: float  # nearest-neighbour hits
    top10: float  # true ticker among the 10 nearest
    mrr: float  # mean reciprocal rank of the true ticker
    rows: int
    candidates: int
    assignment_cost: float

    @property
    def chance_top1(self) -> float:
        return 1.0 / max(self.candidates, 1)

    @property
    def chance_top10(self) -> float:
        return min(10, self.candidates) / max(self.candidates, 1)

    @property
    def chance_mrr(self) -> float:
        return float(np.sum(1.0 / np.arange(1, self.candidates + 1)) / max(self.candidates, 1))


def score_matching(dist: np.ndarray, truth: np.ndarray) -> ReidScores:
    """Score a (rows, candidates) distance matrix; truth = each row's true candidate."""
    n, m = dist.shape
    own = dist[np.arange(n), truth]
    rank = (dist < own[:, None]).sum(axis=1) + 1
    rows, cols = linear_sum_assignment(dist)
    assigned = np.full(n, -1)
    assigned[rows] = cols
    return ReidScores(
        top1=float(np.mean(assigned == truth)),
        top1_nearest=float(np.mean(rank == 1)),
        top10=float(np.mean(rank <= 10)),
        mrr=float(np.mean(1.0 / rank)),
        rows=n,
        candidates=m,
        assignment_cost=float(dist[rows, cols].sum()),
    )


@dataclass(frozen=True)
class EraTarget:
    """One era to attack: released rows, candidate tickers' library scores, the truth."""

    released_bins: np.ndarray  # (rows, features) int8
    library_gauss: np.ndarray  # (candidates, signals) Gaussian-ranked public signals
    truth: np.ndarray  # (rows,) index of each row's true candidate (for scoring only)

    @classmethod
    def build(
        cls,
        released_bins: np.ndarray,
        released_tickers: np.ndarray,
        library_tickers: np.ndarray,
        library_gauss: np.ndarray,
    ) -> EraTarget:
        lookup = {int(t): i for i, t in enumerate(library_tickers)}
        truth = np.array([lookup[int(t)] for t in released_tickers], dtype=np.int64)
        return cls(released_bins, library_gauss, truth)


def _fit_cost(dist: np.ndarray) -> float:
    """How well the released rows fit their best candidates (lower is better)."""
    return float(dist.min(axis=1).sum())


def mutual_nearest(dist: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row, candidate) pairs that are each other's nearest: the attacker's confident matches."""
    nearest = dist.argmin(axis=1)
    back = dist.argmin(axis=0)
    rows = np.flatnonzero(back[nearest] == np.arange(len(dist)))
    return rows, nearest[rows]


def correspondence_distances(target: EraTarget, corr: Correspondence, try_flip: bool) -> np.ndarray:
    """Distances through a correspondence; with try_flip also with every sign reversed (the
    global sign is not identifiable from correlations after mixing), keeping the matching
    the attacker finds cheaper."""
    dist = distances(target.released_bins, target.library_gauss, corr)
    if try_flip:
        other = distances(target.released_bins, target.library_gauss, corr.flipped())
        if _fit_cost(other) < _fit_cost(dist):
            return other
    return dist


def fit_linear_map(library: np.ndarray, released: np.ndarray, ridge: float = 1e-2) -> np.ndarray:
    """Ridge least squares of released scores (rows, features) on library signals + 1."""
    a = np.column_stack([library, np.ones(len(library))])
    gram = a.T @ a + ridge * len(a) * np.eye(a.shape[1])
    return np.asarray(np.linalg.solve(gram, a.T @ released))


def map_distances(target: EraTarget, weights: np.ndarray) -> np.ndarray:
    """Squared distance between released scores and each candidate's predicted scores."""
    y = np.column_stack([target.library_gauss, np.ones(len(target.library_gauss))]) @ weights
    return squared_distances(released_scores(target.released_bins), y)


def min_rows_for_map(signals: int) -> int:
    """Pairs needed before a linear map is worth fitting: two per coefficient."""
    return 2 * (signals + 1)


def self_train(
    targets: list[EraTarget], dists: list[np.ndarray], rounds: int = 2
) -> list[np.ndarray] | None:
    """Bootstrap a linear map signals → released features from the attacker's own matches.

    Each round keeps the confident pairs (mutual nearest neighbours), pools them over the
    eras (the recipe is fixed for a dataset version), fits the map by ridge least squares
    and re-matches every era through it. No ground truth is used. None when too few
    confident pairs exist to fit the map.
    """
    signals = targets[0].library_gauss.shape[1]
    for _ in range(rounds):
        xs, zs = [], []
        for t, d in zip(targets, dists, strict=True):
            rows, cols = mutual_nearest(d)
            xs.append(released_scores(t.released_bins[rows]))
            zs.append(t.library_gauss[cols])
        x, z = np.concatenate(xs), np.concatenate(zs)
        if len(x) < min_rows_for_map(signals):
            return None
        weights = fit_linear_map(z, x)
        dists = [map_distances(t, weights) for t in targets]
    return dists


def truth_map_distances(targets: list[EraTarget]) -> list[np.ndarray] | None:
    """The upper bound under mixing: a linear map fitted on ground-truth-aligned rows."""
    x = np.concatenate([released_scores(t.released_bins) for t in targets])
    z = np.concatenate([t.library_gauss[t.truth] for t in targets])
    if len(x) < min_rows_for_map(z.shape[1]):
        return None
    weights = fit_linear_map(z, x)
    return [map_distances(t, weights) for t in targets]


def confidence(dists: list[np.ndarray]) -> float:
    """Share of rows in a mutual-nearest pair: the attacker's own, ground-truth-free
    measure of how clean a matching is."""
    return float(np.mean([len(mutual_nearest(d)[0]) / max(len(d), 1) for d in dists]))


@dataclass(frozen=True)
class Attack:
    scores: list[ReidScores]
    method: str


def attack_known(
    targets: list[EraTarget], corr: Correspondence | None, fallback: Correspondence
) -> Attack:
    """Case (a), the upper bound: the better (by ground truth) of the true correspondence
    (or, under mixing, each feature's best-correlated signal) and the linear map fitted on
    ground-truth-aligned rows."""
    options: list[tuple[str, list[np.ndarray]]] = []
    if corr is not None:
        options.append(
            ("feature map", [distances(t.released_bins, t.library_gauss, corr) for t in targets])
        )
    mapped = truth_map_distances(targets)
    if mapped is not None:
        options.append(("linear map fitted on ground-truth rows", mapped))
    if corr is None and mapped is None:
        options.append(
            (
                "best-correlated signal on ground-truth rows",
                [distances(t.released_bins, t.library_gauss, fallback) for t in targets],
            )
        )
    best: Attack | None = None
    for method, dists in options:
        scores = [score_matching(d, t.truth) for d, t in zip(dists, targets, strict=True)]
        if best is None or np.mean([s.top1 for s in scores]) > np.mean(
            [s.top1 for s in best.scores]
        ):
            best = Attack(scores, method)
    assert best is not None
    return best


def attack_estimated(
    targets: list[EraTarget], corr: Correspondence, *, try_flip: bool, refine: bool = True
) -> Attack:
    """Case (b): through the estimated correspondence, then (if it looks cleaner to the
    attacker) refined by a self-trained linear map."""
    dists = [correspondence_distances(t, corr, try_flip) for t in targets]
    method = "estimated correspondence"
    if refine:
        refined = self_train(targets, dists)
        if refined is not None and confidence(refined) > confidence(dists):
            dists, method = refined, "estimated correspondence + self-trained linear map"
    return Attack([score_matching(d, t.truth) for d, t in zip(dists, targets, strict=True)], method)
