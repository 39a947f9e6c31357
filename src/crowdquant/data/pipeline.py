"""The dataset pipeline: a private price panel in, an anonymised dataset version out.

    panel ─► eras ─► raw features, targets ─► universe ─► keyed encoding ─► splits ─► frames
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crowdquant.data.anonymise import ids_from_prf, mix64, proportion_bins, row_prf, subsample
from crowdquant.data.config import PIPELINE_VERSION, DatasetConfig
from crowdquant.data.encoding import FeatureEncoder
from crowdquant.data.eras import era_day_positions, era_label
from crowdquant.data.example_model import per_era_corr, predict_ranked, train_example_model
from crowdquant.data.features import MIN_HISTORY, compute_features, feature_specs, market_beta
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.panel import Panel, PanelError
from crowdquant.data.splits import HOLDOUT, LIVE, TRAIN, VALIDATION, split_eras
from crowdquant.data.targets import forward_returns, residualise

MAIN_TARGET, AUX_TARGET = "target", "target_60"
HISTORY_SCOPE = "history"  # id key scope of the eras built from history
Step = Callable[[str], None]


def _no_report(_: str) -> None:
    return None


@dataclass
class EraGrid:
    """The eras of a build: panel row positions, dates and published labels."""

    days: np.ndarray
    dates: list[str]
    labels: list[str]


@dataclass
class BuiltDataset:
    """Everything a build makes, in memory; `release` writes it out."""

    frames: dict[str, pd.DataFrame]  # train, validation, live (published) and holdout (hidden)
    features_json: dict[str, Any]
    example_predictions: dict[str, pd.DataFrame]  # validation, live
    id_map: pd.DataFrame  # operator only: id → ticker, date, raw residual returns
    feature_map: list[dict[str, str]]  # operator only: published name → real source
    eras: pd.DataFrame  # operator only: era label → date, split
    summary: dict[str, Any] = field(default_factory=dict)


def eligible_universe(panel: Panel, days: np.ndarray) -> np.ndarray:
    """Tickers priced on the era day and listed for the whole feature lookback."""
    close = panel.close.to_numpy(np.float64)
    first = np.maximum(days - (MIN_HISTORY - 1), 0)
    return np.isfinite(close[days]) & np.isfinite(close[first]) & (days >= MIN_HISTORY - 1)[:, None]


def era_grid(panel: Panel) -> EraGrid:
    days = era_day_positions(panel.dates)
    days = days[days >= MIN_HISTORY - 1]
    dates = [d.strftime("%Y-%m-%d") for d in panel.dates[days]]
    return EraGrid(days, dates, [era_label(i + 1) for i in range(len(days))])


def build_dataset(
    panel: Panel, config: DatasetConfig, keys: OperatorKeys, report: Step = _no_report
) -> BuiltDataset:
    grid = era_grid(panel)
    cfg = config.targets
    close = panel.close.to_numpy(np.float64)
    n_days = close.shape[0]
    has_target = grid.days + cfg.lag + cfg.horizon < n_days
    if has_target.all() or not has_target.any():
        raise PanelError("the panel is too short: it needs eras with targets and a live era after")
    target_eras = np.flatnonzero(has_target)
    live_era = len(grid.days) - 1
    splits = split_eras(len(target_eras), config.splits)
    split_of = dict(zip(target_eras, splits.label_of(len(target_eras)), strict=True))
    split_of[live_era] = LIVE
    used = np.array(sorted(e for e, s in split_of.items() if s))
    days = grid.days[used]

    report("features")
    specs = feature_specs(panel.volume is not None)
    raw = compute_features(panel, days)
    beta = market_beta(panel, days)

    report("targets")
    fwd = forward_returns(close, days, cfg.lag, cfg.horizon)
    fwd_aux = forward_returns(close, days, cfg.lag, cfg.aux_horizon)
    is_live = used == live_era
    include = eligible_universe(panel, days) & (np.isfinite(fwd) | is_live[:, None])

    report("anonymise")
    dates = [grid.dates[e] for e in used]
    prf = row_prf(keys.derive(f"ids:{HISTORY_SCOPE}"), panel.tickers, dates, include)
    scope = f"{HISTORY_SCOPE}:{config.digest()}"
    if config.anonymisation.subsample is not None:
        include = subsample(include, prf[..., 1], keys, scope, config.anonymisation.subsample)
    _check_era_sizes(include, [grid.labels[e] for e in used], config.min_stocks_per_era)
    sectors = panel.sector_codes()
    resid = residualise(fwd, beta, sectors, include)
    resid_aux = residualise(fwd_aux, beta, sectors, include)
    tiebreak = mix64(prf[..., 1], int.from_bytes(keys.derive("target-tiebreak")[:8], "little"))
    target = proportion_bins(resid, include, tiebreak, cfg.proportions)
    target_aux = proportion_bins(resid_aux, include, tiebreak, cfg.proportions)
    encoder = FeatureEncoder(keys, specs, config.anonymisation)
    bins = encoder.encode(raw, include, prf[..., 1])
    del raw

    report("assemble")
    era_split = np.array([split_of[e] for e in used])
    cells = np.nonzero(include)
    ids = ids_from_prf(prf[..., 0][cells])
    if len(set(ids)) != len(ids):
        raise RuntimeError("id collision: rebuild with a new key")
    rows = pd.DataFrame(
        {
            "id": ids,
            "era": np.array([grid.labels[e] for e in used])[cells[0]],
            "data_type": era_split[cells[0]],
        }
    )
    features = pd.DataFrame(bins[cells], columns=encoder.names)
    targets = pd.DataFrame({MAIN_TARGET: target[cells], AUX_TARGET: target_aux[cells]})
    table = pd.concat([rows, features, targets], axis=1)
    table.loc[table["data_type"] == LIVE, [MAIN_TARGET, AUX_TARGET]] = np.nan
    table = table.sort_values(["era", "id"]).set_index("id")
    frames = {s: table[table["data_type"] == s] for s in (TRAIN, VALIDATION, HOLDOUT, LIVE)}
    frames[LIVE] = frames[LIVE].drop(columns=[MAIN_TARGET, AUX_TARGET])

    report("example model")
    model = train_example_model(frames[TRAIN], encoder.names, config.example_model)
    predictions = {s: predict_ranked(model, frames[s], encoder.names) for s in (VALIDATION, LIVE)}
    corr = per_era_corr(
        predictions[VALIDATION]["prediction"],
        frames[VALIDATION][MAIN_TARGET],
        frames[VALIDATION]["era"],
    )

    id_map = pd.DataFrame(
        {
            "id": ids,
            "era": rows["era"],
            "data_type": rows["data_type"],
            "ticker": np.array(panel.tickers, dtype=object)[cells[1]],
            "date": np.array(dates, dtype=object)[cells[0]],
            "residual_return": resid[cells],
            "residual_return_60": resid_aux[cells],
        }
    ).sort_values(["era", "id"], ignore_index=True)
    eras = pd.DataFrame(
        {"era": [grid.labels[e] for e in used], "date": dates, "data_type": era_split}
    )
    return BuiltDataset(
        frames=frames,
        features_json=_features_json(encoder, keys, config),
        example_predictions=predictions,
        id_map=id_map,
        feature_map=[
            {"name": f.name, "source": f.source, "group": f.group, "group_label": f.group_label}
            for f in encoder.features
        ],
        eras=eras,
        summary=_summary(panel, frames, encoder.names, corr, config),
    )


def _check_era_sizes(include: np.ndarray, labels: list[str], minimum: int) -> None:
    counts = include.sum(axis=1)
    small = np.flatnonzero(counts < minimum)
    if len(small):
        shown = ", ".join(f"era {labels[i]}: {counts[i]}" for i in small[:5])
        raise PanelError(f"too few stocks per era (minimum {minimum}): {shown}")


def _features_json(encoder: FeatureEncoder, keys: OperatorKeys, config: DatasetConfig) -> dict[str, Any]:
    names = encoder.names
    shuffled = [names[i] for i in keys.rng("feature-sets").permutation(len(names))]
    n_small = max(1, round(len(names) * config.small_fraction))
    n_medium = max(n_small, round(len(names) * config.medium_fraction))
    sets: dict[str, list[str]] = {
        "small": sorted(shuffled[:n_small], key=names.index),
        "medium": sorted(shuffled[:n_medium], key=names.index),
        "all": names,
    }
    for label in sorted(set(encoder.group_label.values())):
        sets[label] = [f.name for f in encoder.features if f.group_label == label]
    return {"feature_sets": sets, "targets": [MAIN_TARGET, AUX_TARGET]}


def _summary(
    panel: Panel,
    frames: dict[str, pd.DataFrame],
    names: list[str],
    corr: pd.Series,
    config: DatasetConfig,
) -> dict[str, Any]:
    return {
        "pipeline_version": PIPELINE_VERSION,
        "config_hash": config.digest(),
        "source": panel.name,
        "tickers": len(panel.tickers),
        "features": len(names),
        "splits": {
            name: {
                "eras": int(frame["era"].nunique()),
                "rows": len(frame),
                "first_era": str(frame["era"].iloc[0]),
                "last_era": str(frame["era"].iloc[-1]),
            }
            for name, frame in frames.items()
            if len(frame)
        },
        "example_validation_corr": {
            "mean": float(corr.mean()),
            "sharpe": float(corr.mean() / corr.std()) if len(corr) > 1 else float("nan"),
        },
    }
