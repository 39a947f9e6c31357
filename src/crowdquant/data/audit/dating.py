"""L4 — era dating: place a published era on the public calendar.

An era's fingerprint is the cross-sectional correlation matrix of its released bins. The
attacker computes the same from the public library, binned per candidate date, for every
weekly date of the panel and picks the nearest. Two fingerprints:

* matrix: the full matrix, read through the estimated feature ↔ signal correspondence;
* spectrum: its sorted eigenvalues, which need no correspondence at all;
* groups (run when mixing is on): the canonical correlations between every pair of feature
  groups. Mixing replaces a group's features by linear combinations of them, and canonical
  correlations do not change under any invertible linear map within a group, so this
  fingerprint needs only the group ↔ group correspondence (published group labels).

Era numbers are consecutive weeks, so dating one era dates them all: the joint attack
chooses the single offset that best fits every sampled era at once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from crowdquant.data.audit.reidentify import Correspondence


def upper(matrix: np.ndarray) -> np.ndarray:
    i, j = np.triu_indices(matrix.shape[0], k=1)
    return np.asarray(matrix[i, j])


def spectrum(matrix: np.ndarray) -> np.ndarray:
    return np.asarray(np.sort(np.linalg.eigvalsh(matrix))[::-1])


def _inverse_sqrt(matrix: np.ndarray, floor: float = 1e-3) -> np.ndarray:
    values, vectors = np.linalg.eigh(matrix)
    return np.asarray((vectors / np.sqrt(np.maximum(values, floor))) @ vectors.T)


def group_fingerprint(matrix: np.ndarray, groups: list[np.ndarray]) -> np.ndarray:
    """Canonical correlations between every pair of groups (index arrays into matrix)."""
    whiten = [_inverse_sqrt(matrix[np.ix_(g, g)]) for g in groups]
    out = []
    for a in range(len(groups)):
        for b in range(a + 1, len(groups)):
            block = whiten[a] @ matrix[np.ix_(groups[a], groups[b])] @ whiten[b]
            out.append(np.linalg.svd(block, compute_uv=False))
    return np.concatenate(out) if out else np.zeros(0)


def dating_distances(
    released: list[np.ndarray],
    candidates: Iterable[np.ndarray],
    corr: Correspondence,
    groups: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
) -> dict[str, np.ndarray]:
    """(eras, candidate dates) distances for each fingerprint.

    released: each sampled era's (features, features) correlation of its bins;
    candidates: the library's (signals, signals) binned correlation on every candidate date;
    groups: matched (released, library) group index arrays, for the groups fingerprint.
    """
    r_vec = np.stack([upper(c) for c in released])
    r_spec = np.stack([spectrum(c) for c in released])
    r_grp = (
        None if groups is None else np.stack([group_fingerprint(c, groups[0]) for c in released])
    )
    signs = np.outer(corr.signs, corr.signs)
    found: dict[str, list[np.ndarray]] = {"matrix": [], "spectrum": [], "groups": []}
    for lib in candidates:
        matched = upper(lib[np.ix_(corr.columns, corr.columns)] * signs)
        found["matrix"].append(np.sqrt(((r_vec - matched[None, :]) ** 2).sum(axis=1)))
        spec = spectrum(lib)
        k = min(len(spec), r_spec.shape[1])
        found["spectrum"].append(np.sqrt(((r_spec[:, :k] - spec[None, :k]) ** 2).sum(axis=1)))
        if r_grp is not None and groups is not None:
            fp = group_fingerprint(lib, groups[1])
            found["groups"].append(np.sqrt(((r_grp - fp[None, :]) ** 2).sum(axis=1)))
    return {name: np.stack(d, axis=1) for name, d in found.items() if d}


def matched_groups(
    released_labels: list[str], library_groups: list[str], corr: Correspondence
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Pair each published group label with the real group (or, where a label holds
    several, the real groups) most of its features were matched to, by the estimated
    correspondence; a label whose votes add up to no group of its size is left out.
    Returns matched index arrays."""
    released_out: list[np.ndarray] = []
    library_out: list[np.ndarray] = []
    taken: set[str] = set()
    names = np.array(library_groups)
    for label in sorted(set(released_labels)):
        members = np.flatnonzero(np.array(released_labels) == label)
        votes = [library_groups[int(corr.columns[i])] for i in members]
        ranked = [
            g for g in sorted(set(votes), key=lambda g: (-votes.count(g), g)) if g not in taken
        ]
        chosen: list[str] = []
        for group in ranked:
            chosen.append(group)
            if np.isin(names, chosen).sum() >= len(members):
                break
        matched = np.flatnonzero(np.isin(names, chosen))
        if not chosen or len(matched) != len(members):
            continue
        taken.update(chosen)
        released_out.append(members)
        library_out.append(matched)
    return released_out, library_out


@dataclass(frozen=True)
class DatingScores:
    exact: float  # share of eras dated to the right week
    within_one_week: float
    joint_exact: bool  # the single best offset dates every sampled era exactly
    joint_within_one_week: bool
    candidates: int

    @property
    def chance_exact(self) -> float:
        return 1.0 / max(self.candidates, 1)

    @property
    def chance_within_one_week(self) -> float:
        return min(3, self.candidates) / max(self.candidates, 1)


def score_dating(dist: np.ndarray, truth: np.ndarray, era_numbers: np.ndarray) -> DatingScores:
    """Score (eras, candidates) distances; truth = each era's true candidate index."""
    guess = dist.argmin(axis=1)
    n_eras, n_cand = dist.shape
    base = era_numbers - era_numbers.min()
    offsets = np.arange(0, n_cand - base.max())
    if len(offsets):
        cost = np.array([dist[np.arange(n_eras), base + o].sum() for o in offsets])
        joint = base + offsets[cost.argmin()]
    else:
        joint = guess
    return DatingScores(
        exact=float(np.mean(guess == truth)),
        within_one_week=float(np.mean(np.abs(guess - truth) <= 1)),
        joint_exact=bool(np.all(joint == truth)),
        joint_within_one_week=bool(np.all(np.abs(joint - truth) <= 1)),
        candidates=n_cand,
    )
