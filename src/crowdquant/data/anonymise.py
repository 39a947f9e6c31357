"""Anonymisation: keyed ids, keyed per-era binning, secret mixing, meaningless names.

Arrays here are era grids: shape (eras, tickers), with an `include` mask saying which
cells are rows of the published data. All randomness is keyed, so a build is reproducible
by whoever holds the keys and by nobody else.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from crowdquant.data.keys import OperatorKeys, keyed_digests

N_FEATURE_BINS = 5
TARGET_VALUES = np.array([0.0, 0.25, 0.5, 0.75, 1.0], dtype=np.float32)
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)
_CONSONANTS = "bdfghjklmnprstvz"
_VOWELS = "aeiou"


def row_prf(key: bytes, tickers: list[str], dates: list[str], include: np.ndarray) -> np.ndarray:
    """A keyed 128-bit value per included (era, ticker) cell, as (eras, tickers, 2) uint64.

    Word 0 makes the row's id, word 1 its tie-breaks and sub-sampling draws.
    """
    out = np.zeros((*include.shape, 2), dtype=np.uint64)
    era_idx, tick_idx = np.nonzero(include)
    labels = [f"{tickers[t]}|{dates[e]}" for e, t in zip(era_idx, tick_idx, strict=True)]
    out[era_idx, tick_idx] = keyed_digests(key, labels)
    return out


def ids_from_prf(words: np.ndarray) -> np.ndarray:
    """'n' + 15 hex characters: the top 60 bits of the keyed hash."""
    return np.array([f"n{int(w) >> 4:015x}" for w in words], dtype=object)


def mix64(x: np.ndarray, salt: int) -> np.ndarray:
    """splitmix64 finaliser of x ^ salt: a cheap keyed re-hash for per-feature tie-breaks."""
    z = x ^ np.uint64(salt & 0xFFFFFFFFFFFFFFFF)
    z = z + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def era_ranks(values: np.ndarray, valid: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """0-based rank of each valid cell within its era; ties ordered by the keyed tiebreak.

    Invalid cells get ranks past the valid ones (use `valid` to ignore them).
    """
    bits = values.astype(np.float32).view(np.uint32).astype(np.uint64)
    sortable = np.where(bits >> np.uint64(31), ~bits & np.uint64(0xFFFFFFFF), bits | (1 << 31))
    keys = (sortable << np.uint64(32)) | (tiebreak & np.uint64(0xFFFFFFFF))
    keys[~valid] = _ALL_ONES
    order = np.argsort(keys, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(order.shape[1])[None, :], axis=1)
    return ranks


def equal_count_bins(
    values: np.ndarray, include: np.ndarray, tiebreak: np.ndarray, missing_bin: int
) -> np.ndarray:
    """int8 bins 0–4 with equal counts (±1) per era among present values.

    Missing values of included rows get `missing_bin`; excluded cells get -1.
    """
    valid = include & np.isfinite(values)
    ranks = era_ranks(values, valid, tiebreak)
    n_valid = valid.sum(axis=1, keepdims=True)
    bins = (ranks * N_FEATURE_BINS) // np.maximum(n_valid, 1)
    out = np.where(valid, bins, missing_bin).astype(np.int8)
    out[~include] = -1
    return out


def proportion_bins(
    values: np.ndarray, include: np.ndarray, tiebreak: np.ndarray, proportions: tuple[float, ...]
) -> np.ndarray:
    """Target bins {0, .25, .5, .75, 1} holding the given shares per era; NaN elsewhere."""
    valid = include & np.isfinite(values)
    ranks = era_ranks(values, valid, tiebreak)
    n_valid = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    quantile = (ranks + 0.5) / n_valid
    edges = np.cumsum(proportions)[:-1]
    out = TARGET_VALUES[np.searchsorted(edges, quantile, side="right").clip(0, 4)]
    return np.where(valid, out, np.float32(np.nan)).astype(np.float32)


def gaussian_ranks(values: np.ndarray, include: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Per-era ranks mapped through the normal quantile; missing values sit at 0 (the median)."""
    valid = include & np.isfinite(values)
    ranks = era_ranks(values, valid, tiebreak)
    n_valid = np.maximum(valid.sum(axis=1, keepdims=True), 1)
    return np.where(valid, ndtri((ranks + 0.5) / n_valid), 0.0)


def mixing_matrix(keys: OperatorKeys, group: str, size: int) -> np.ndarray:
    """A secret random orthogonal matrix for one feature group (Haar, via QR)."""
    a = keys.rng(f"mixing:{group}").standard_normal((size, size))
    q, r = np.linalg.qr(a)
    haar: np.ndarray = q * np.sign(np.diag(r))
    return haar


def subsample(
    include: np.ndarray,
    draws: np.ndarray,
    keys: OperatorKeys,
    scope: str,
    fraction_range: tuple[float, float],
) -> np.ndarray:
    """Keep a keyed random share of each era's rows, the share itself drawn per era."""
    low, high = fraction_range
    fractions = keys.rng(f"subsample:{scope}").uniform(low, high, size=include.shape[0])
    draws = np.where(include, draws, _ALL_ONES)
    ranks = np.argsort(np.argsort(draws, axis=1, kind="stable"), axis=1)
    keep = np.ceil(include.sum(axis=1) * fractions).astype(np.int64)
    kept: np.ndarray = include & (ranks < keep[:, None])
    return kept


def pseudo_word(value: int, syllables: int = 3) -> str:
    letters = []
    for _ in range(syllables):
        letters += [_CONSONANTS[value % 16], _VOWELS[(value >> 4) % 5]]
        value >>= 8
    return "".join(letters)


def published_feature_names(keys: OperatorKeys, real_names: list[str]) -> list[str]:
    """Meaningless, keyed, unique names such as 'feature_bokaze_tirumo_nesepa'."""
    key = keys.derive("feature-names")
    names: list[str] = []
    taken: set[str] = set()
    for real in real_names:
        attempt = 0
        while True:
            digest = keyed_digests(key, [f"{real}#{attempt}"])[0]
            words = [pseudo_word(int(w) >> s & 0xFFFFFF) for w in digest for s in (0, 24)][:3]
            name = "feature_" + "_".join(words)
            if name not in taken:
                break
            attempt += 1
        taken.add(name)
        names.append(name)
    return names
