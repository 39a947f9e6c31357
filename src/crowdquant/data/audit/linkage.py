"""L1 — cross-era linkage: follow a stock from one era to the next by its bin vector.

Ids rotate every era, but slow features barely move from one week to the next, so a row's
nearest neighbour (L1 distance between bin vectors) in the next era is usually itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist


def l1_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """L1 (Manhattan) distance between every bin vector of a and of b."""
    return np.asarray(cdist(a.astype(np.float32), b.astype(np.float32), metric="cityblock"))


def link(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row of b linked to each row of a: by nearest neighbour, and by optimal assignment.

    The assignment leaves rows unlinked (-1) when a has more rows than b.
    """
    dist = l1_distances(a, b)
    nearest = dist.argmin(axis=1)
    rows, cols = linear_sum_assignment(dist)
    assigned = np.full(len(a), -1, dtype=np.int64)
    assigned[rows] = cols
    return nearest, assigned


@dataclass(frozen=True)
class LinkRates:
    nearest: float  # top-1 link rate of nearest neighbour, over stocks in both eras
    hungarian: float  # the same for the optimal assignment
    common: int  # stocks present in both eras
    candidates: int  # rows of the later era
    chance: float  # 1 / candidates


def link_rates(
    a: np.ndarray, a_tickers: np.ndarray, b: np.ndarray, b_tickers: np.ndarray
) -> tuple[LinkRates, np.ndarray]:
    """Link era a to era b; score against the true tickers. Also returns the assignment."""
    nearest, assigned = link(a, b)
    common = np.isin(a_tickers, b_tickers)
    n = int(common.sum())
    hit_nn = b_tickers[nearest] == a_tickers
    hit_h = (assigned >= 0) & (b_tickers[np.maximum(assigned, 0)] == a_tickers)
    rates = LinkRates(
        nearest=float(hit_nn[common].mean()) if n else 0.0,
        hungarian=float(hit_h[common].mean()) if n else 0.0,
        common=n,
        candidates=len(b),
        chance=1.0 / max(len(b), 1),
    )
    return rates, assigned


def chain_rates(tickers: list[np.ndarray], assignments: list[np.ndarray]) -> list[float]:
    """Success of following k links (k = 1, 2, ...) from the first era.

    tickers[i] are the true tickers of era i's rows; assignments[i] maps era i's rows to
    era i+1's rows (-1 = unlinked). A chain of k links succeeds for a stock present in eras
    0 and k when it ends on that stock's row.
    """
    position = np.arange(len(tickers[0]))
    alive = np.ones(len(position), dtype=bool)
    rates: list[float] = []
    for k, assigned in enumerate(assignments, start=1):
        nxt = np.where(alive, assigned[np.clip(position, 0, len(assigned) - 1)], -1)
        alive = nxt >= 0
        position = np.where(alive, nxt, 0)
        start = tickers[0]
        present = np.isin(start, tickers[k])
        correct = alive & (tickers[k][position] == start)
        rates.append(float(correct[present].mean()) if present.any() else 0.0)
    return rates


def chain_length_to_half(rates: list[float]) -> int:
    """The longest chain (in links) whose success is still at least 50 %."""
    length = 0
    for k, rate in enumerate(rates, start=1):
        if rate < 0.5:
            break
        length = k
    return length
