"""Targets: forward returns after a lag, residualised per era against beta and sector."""

from __future__ import annotations

import numpy as np


def forward_returns(close: np.ndarray, days: np.ndarray, lag: int, horizon: int) -> np.ndarray:
    """log(close[d + lag + horizon] / close[d + lag]) per era day d and ticker.

    NaN where the window runs past the end of the panel or a price is missing.
    """
    start, end = days + lag, days + lag + horizon
    out = np.full((len(days), close.shape[1]), np.nan)
    known = end < close.shape[0]
    with np.errstate(invalid="ignore", divide="ignore"):
        out[known] = np.log(close[end[known]] / close[start[known]])
    return out


def residualise(
    returns: np.ndarray, beta: np.ndarray, sectors: np.ndarray, include: np.ndarray
) -> np.ndarray:
    """Per era, the part of each return not explained by sector and market beta.

    Each era is a cross-sectional least-squares fit of returns on sector dummies (which
    absorb the intercept) and beta; cells outside `include` or without data stay NaN.
    """
    out = np.full(returns.shape, np.nan)
    dummies = (sectors[:, None] == np.unique(sectors)[None, :]).astype(np.float64)
    for era in range(returns.shape[0]):
        rows = include[era] & np.isfinite(returns[era]) & np.isfinite(beta[era])
        if rows.sum() < 2:
            continue
        design = np.column_stack([dummies[rows], beta[era, rows]])
        coef, *_ = np.linalg.lstsq(design, returns[era, rows], rcond=None)
        out[era, rows] = returns[era, rows] - design @ coef
    return out
