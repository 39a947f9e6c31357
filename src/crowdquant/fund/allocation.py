"""Allocation: how much each model counts in the blend the fund trades.

Versioned rules, each a function of the models' stakes and reputations:

* ``stake-reputation-v1`` (the fund's rule): weight_m ∝ stake_m · max(reputation_m, floor).
  Reputation is the mean CORR of the model's resolved rounds over the last year (the
  leaderboard's reputation); a model without history, or with a reputation below the floor
  (0.005 by default), counts as if it had the floor, so a new staked model still gets a small
  share and a poor record never a negative one. A model without stake gets nothing.
* ``stake-v1``: weight_m ∝ stake_m, the tournament's stake-weighted meta model.
* ``equal-v1``: every model 1/K, stakes ignored.

Weights sum to 1. A rule that would give every model 0 (no stake at all) raises
`AllocationError`.

For backtests, `trailing_reputation` gives each era the reputation the rule would have seen
then: the mean per-era CORR over the `window` eras whose targets had resolved, i.e. those at
least `delay` eras older (the target's reach: lag + horizon), so no era uses its own future.
`blend` then forms each era's blend with the tournament's meta-model arithmetic (the weighted
mean of Φ⁻¹ of each model's tie-kept ranks within the era).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from crowdquant.fund.backtest import BacktestResult
from crowdquant.scoring.eras import score_eras
from crowdquant.scoring.metamodel import stake_weighted_meta_model

STAKE_REPUTATION = "stake-reputation-v1"
STAKE = "stake-v1"
EQUAL = "equal-v1"
RULES = (STAKE_REPUTATION, STAKE, EQUAL)
REPUTATION_FLOOR = 0.005
REPUTATION_WINDOW = 52  # eras: a year of weekly eras, like the leaderboard's reputation


class AllocationError(ValueError):
    """A rule cannot weigh the models it is given."""


def allocation_weights(
    rule: str,
    stakes: pd.Series,
    reputation: pd.Series | None = None,
    *,
    floor: float = REPUTATION_FLOOR,
) -> pd.Series:
    """Blend weights (summing to 1) of the models `stakes` names, under `rule`."""
    stake = stakes.astype(np.float64)
    if not np.isfinite(stake.to_numpy()).all() or (stake < 0).any():
        raise AllocationError("stakes must be finite and non-negative")
    if rule == EQUAL:
        raw = pd.Series(1.0, index=stake.index)
    elif rule == STAKE:
        raw = stake
    elif rule == STAKE_REPUTATION:
        known = (
            pd.Series(np.nan, index=stake.index)
            if reputation is None
            else reputation.reindex(stake.index).astype(np.float64)
        )
        raw = stake * known.fillna(floor).clip(lower=floor)
    else:
        raise AllocationError(f"unknown allocation rule {rule!r}: use one of {list(RULES)}")
    total = float(raw.sum())
    if not total > 0:
        raise AllocationError(f"rule {rule} gives every model 0: no model has a stake")
    return (raw / total).rename("weight")


def era_corr(predictions: pd.DataFrame, eras: pd.Series, targets: pd.Series) -> pd.DataFrame:
    """The tournament's CORR of each model (column) in each era: eras × models."""
    frame = predictions.astype(np.float64).copy()
    models = [str(c) for c in frame.columns]
    frame.columns = models
    frame["__era"] = eras.reindex(frame.index).to_numpy()
    frame["__target"] = targets.reindex(frame.index).to_numpy(np.float64)
    scored = score_eras(frame.dropna(), models, "__target", era="__era")
    corr = pd.DataFrame(scored["corr"])
    corr.index.name = "era"
    return corr


def trailing_reputation(
    corr: pd.DataFrame, *, delay: int, window: int = REPUTATION_WINDOW
) -> pd.DataFrame:
    """Per era (rows in order), each model's mean CORR over the `window` eras that end
    `delay` eras before it (NaN where none has resolved yet)."""
    if delay < 1:
        raise ValueError("delay must be at least 1 era: an era's own target is unknown")
    rolled = corr.rolling(window, min_periods=1).mean()
    return rolled.shift(delay)


def blend(predictions: pd.DataFrame, eras: pd.Series, weights: pd.DataFrame) -> pd.Series:
    """Per era, the weighted mean of the models' Gaussianised ranks (the meta model).

    `weights` is eras × models (rows sum to 1); `eras` gives each prediction row's era.
    """
    era_of = eras.reindex(predictions.index).to_numpy()
    out = np.full(len(predictions), np.nan)
    values = predictions.to_numpy(np.float64)
    table = weights.reindex(columns=predictions.columns)
    for era in pd.unique(era_of[pd.notna(era_of)]):
        rows = np.flatnonzero(era_of == era)
        out[rows] = stake_weighted_meta_model(values[rows], table.loc[era].to_numpy(np.float64))
    return pd.Series(out, index=predictions.index, name="prediction")


def rule_weights(
    rule: str,
    stakes: pd.Series,
    reputation: pd.DataFrame,
    *,
    floor: float = REPUTATION_FLOOR,
) -> pd.DataFrame:
    """The rule's weights in each era (rows of `reputation`): eras × models."""
    rows = [
        allocation_weights(rule, stakes, reputation.loc[era], floor=floor)
        for era in reputation.index
    ]
    return pd.DataFrame(rows, index=reputation.index, columns=stakes.index)


def compare_allocations(
    predictions: pd.DataFrame,
    eras: pd.Series,
    targets: pd.Series,
    stakes: pd.Series,
    run: Callable[[str, pd.Series], BacktestResult],
    *,
    delay: int,
    window: int = REPUTATION_WINDOW,
    rules: Sequence[str] = RULES,
    names: Mapping[str, str] | None = None,
) -> dict[str, BacktestResult]:
    """Backtest the blend of `predictions` (ids × models) under each rule, walking forward:
    each era's weights use only the reputations resolved before it. `run(name, blended)`
    is the backtest (e.g. `VersionBacktest.run`); `names` relabels rules in the results."""
    corr = era_corr(predictions, eras, targets)
    reputation = trailing_reputation(corr, delay=delay, window=window)
    results: dict[str, BacktestResult] = {}
    staked = stakes.reindex(predictions.columns).fillna(0.0)  # no stake given: 0
    for rule in rules:
        weights = rule_weights(rule, staked, reputation)
        blended = blend(predictions, eras, weights)
        results[rule] = run((names or {}).get(rule, rule), blended)
    return results
