"""The dataset pipeline: a private price panel in, an anonymised dataset version out.

panel ─► eras, splits ─► targets, universe ─► features, keyed encoding ─► frames
      ─► example model, benchmark models
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from crowdquant.data.anonymise import ids_from_prf, mix64, proportion_bins, row_prf, subsample
from crowdquant.data.benchmark import BenchmarkModels, train_benchmark_models
from crowdquant.data.config import PIPELINE_VERSION, DatasetConfig
from crowdquant.data.encoding import FeatureEncoder
from crowdquant.data.eras import era_day_positions, era_label
from crowdquant.data.example_model import per_era_corr, predict_ranked, train_example_model
from crowdquant.data.features import MIN_HISTORY, compute_features, feature_specs, market_beta
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.panel import Panel, PanelError
from crowdquant.data.splits import HOLDOUT, LIVE, TRAIN, VALIDATION, split_eras
from crowdquant.data.targets import (
    Exposures,
    construct,
    forward_returns,
    target_column,
    target_names,
    trailing_exposures,
)

MAIN_TARGET = "target"  # a copy of the main target the operator chose
HISTORY_SCOPE = "history"  # id key scope of the eras built from history
CHUNK_ERAS = 128  # eras whose raw features are held in memory at once
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
    benchmark_models: BenchmarkModels  # operator only: the fitted benchmark models
    benchmark_predictions: dict[str, pd.DataFrame]  # train, validation, live: era, one column
    # per benchmark target (`release` names them after the version)
    id_map: pd.DataFrame  # operator only: id → ticker, date, raw residual returns
    feature_map: list[dict[str, str]]  # operator only: published name → real source
    target_map: dict[str, Any]  # operator only: published target → construction, horizon
    eras: pd.DataFrame  # operator only: era label → date, split
    summary: dict[str, Any] = field(default_factory=dict)


def eligible_universe(panel: Panel, days: np.ndarray) -> np.ndarray:
    """Tickers priced on the era day and listed for the whole feature lookback."""
    close = panel.close.to_numpy(np.float64)
    first = np.maximum(days - (MIN_HISTORY - 1), 0)
    listed: np.ndarray = np.isfinite(close[days]) & np.isfinite(close[first])
    return listed & (days >= MIN_HISTORY - 1)[:, None]


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
    used, split_of = _plan_eras(grid, close.shape[0], config)
    days = grid.days[used]
    is_live = np.array([split_of[e] == LIVE for e in used])

    report("targets")
    fwd = {h: forward_returns(close, days, cfg.lag, h) for h in cfg.horizons}
    include = eligible_universe(panel, days) & (
        np.isfinite(fwd[cfg.main_horizon]) | is_live[:, None]
    )
    dates = [grid.dates[e] for e in used]
    prf = row_prf(keys.derive(f"ids:{HISTORY_SCOPE}"), panel.tickers, dates, include)
    if config.anonymisation.subsample is not None:
        scope = f"{HISTORY_SCOPE}:{config.digest()}"
        include = subsample(include, prf[..., 1], keys, scope, config.anonymisation.subsample)
    _check_era_sizes(include, [grid.labels[e] for e in used], config.min_stocks_per_era)
    exposures = trailing_exposures(close, days, market_beta(panel, days), panel.sector_codes())
    tiebreak = mix64(prf[..., 1], int.from_bytes(keys.derive("target-tiebreak")[:8], "little"))
    row_splits = [split_of[e] for e in used]
    targets, main_values, target_map = _targets(
        fwd, exposures, include, tiebreak, days, row_splits, keys, config
    )

    report("features")
    encoder = FeatureEncoder(keys, feature_specs(panel.volume is not None), config.anonymisation)
    bins = _encoded_features(panel, days, include, prf[..., 1], encoder)

    report("assemble")
    era_idx, ticker_idx = np.nonzero(include)
    ids = ids_from_prf(prf[..., 0][era_idx, ticker_idx]).astype("U16")
    if len(np.unique(ids)) != len(ids):
        raise RuntimeError("id collision: rebuild with a new key")
    order = np.lexsort((ids, era_idx))  # by era, then by id: row order says nothing
    era_idx, ticker_idx, ids = era_idx[order], ticker_idx[order], ids[order]
    labels = np.array([grid.labels[e] for e in used])[era_idx]
    row_split = np.array([split_of[e] for e in used])[era_idx]
    cells = (era_idx, ticker_idx)
    frames = {
        split: _frame(split, row_split == split, cells, ids, labels, bins, encoder.names, targets)
        for split in (TRAIN, VALIDATION, HOLDOUT, LIVE)
    }
    del bins

    report("example model")
    model = train_example_model(frames[TRAIN], encoder.names, config.example_model)
    predictions = {s: predict_ranked(model, frames[s], encoder.names) for s in (VALIDATION, LIVE)}
    corr = per_era_corr(
        predictions[VALIDATION]["prediction"],
        frames[VALIDATION][MAIN_TARGET],
        frames[VALIDATION]["era"],
    )

    report("benchmark models")
    benchmark, benchmark_train = train_benchmark_models(
        frames[TRAIN], encoder.names, config.benchmark_targets, config.benchmark
    )
    benchmark_predictions = {
        TRAIN: benchmark_train,
        VALIDATION: benchmark.predict(frames[VALIDATION]),
        LIVE: benchmark.predict(frames[LIVE]),
    }
    validation = frames[VALIDATION]
    benchmark_corr = {
        target: float(
            per_era_corr(
                benchmark_predictions[VALIDATION][target], validation[target], validation["era"]
            ).mean()
        )
        for target in benchmark.models
    }

    id_map = pd.DataFrame(
        {
            "id": ids.astype(object),
            "era": labels,
            "data_type": row_split,
            "ticker": np.array(panel.tickers, dtype=object)[ticker_idx],
            "date": np.array(dates, dtype=object)[era_idx],
            "residual_return": main_values[era_idx, ticker_idx],
        }
    )
    eras = pd.DataFrame(
        {
            "era": [grid.labels[e] for e in used],
            "date": dates,
            "data_type": [split_of[e] for e in used],
        }
    )
    return BuiltDataset(
        frames=frames,
        features_json=_features_json(encoder, keys, config, int(include.sum(axis=1).min())),
        target_map=target_map,
        example_predictions=predictions,
        benchmark_models=benchmark,
        benchmark_predictions=benchmark_predictions,
        id_map=id_map,
        feature_map=[
            {"name": f.name, "source": f.source, "group": f.group, "group_label": f.group_label}
            for f in encoder.features
        ],
        eras=eras,
        summary={
            **_summary(panel, frames, encoder.names, corr, config),
            "benchmark_validation_corr": benchmark_corr,
        },
    )


def _plan_eras(
    grid: EraGrid, n_days: int, config: DatasetConfig
) -> tuple[np.ndarray, dict[int, str]]:
    """The eras a build uses and the split of each: the last era is live; eras whose main
    target is still unresolved, and the embargoes between splits, are left out."""
    cfg = config.targets
    has_target = grid.days + cfg.lag + cfg.main_horizon < n_days
    if has_target.all() or not has_target.any():
        raise PanelError("the panel is too short: it needs eras with targets and a live era after")
    target_eras = np.flatnonzero(has_target)
    splits = split_eras(len(target_eras), config.splits)
    split_of = {
        int(e): str(s)
        for e, s in zip(target_eras, splits.label_of(len(target_eras)), strict=True)
        if s
    }
    split_of[len(grid.days) - 1] = LIVE
    return np.array(sorted(split_of)), split_of


def _targets(
    fwd: dict[int, np.ndarray],
    exposures: Exposures,
    include: np.ndarray,
    tiebreak: np.ndarray,
    days: np.ndarray,
    splits: list[str],
    keys: OperatorKeys,
    config: DatasetConfig,
) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, Any]]:
    """Every published target, binned (`target` first, a copy of the main one); the main
    target's unbinned values; and what each name is (operator only).

    The configured embargo covers the main target. A longer target of an era whose window
    reaches the next split's first era (train → validation → holdout → live) is left NaN,
    so that no published target overlaps the returns of a later split.
    """
    cfg = config.targets
    binned: dict[str, np.ndarray] = {}
    main_values = np.full(include.shape, np.nan)
    described: dict[str, Any] = {}
    for name, kind in target_names(keys, cfg.main_name, cfg.main_construction).items():
        for horizon in cfg.horizons:
            column = target_column(name, horizon)
            values = construct(kind, fwd[horizon], exposures, include)
            if horizon > cfg.main_horizon:
                values[_overlaps_next_split(days, splits, cfg.lag + horizon)] = np.nan
            if column == cfg.main_target:
                main_values = values
            binned[column] = proportion_bins(values, include, tiebreak, cfg.proportions)
            described[column] = {
                "construction": kind,
                "horizon": horizon,
                "reach_eras": cfg.reach_eras(horizon),
            }
    ordered = {MAIN_TARGET: binned[cfg.main_target]}
    ordered.update((column, binned[column]) for column in sorted(binned))
    return ordered, main_values, {"main": cfg.main_target, "targets": described}


def _overlaps_next_split(days: np.ndarray, splits: list[str], reach: int) -> np.ndarray:
    """Eras whose target window (`reach` trading days) reaches the next split's first day."""
    order = [TRAIN, VALIDATION, HOLDOUT, LIVE]
    first = {s: int(days[splits.index(s)]) for s in order if s in splits}
    out = np.zeros(len(days), dtype=bool)
    for i, split in enumerate(splits):
        later = [first[s] for s in order[order.index(split) + 1 :] if s in first]
        out[i] = bool(later) and int(days[i]) + reach >= min(later)
    return out


def _frame(
    split: str,
    pick: np.ndarray,
    cells: tuple[np.ndarray, np.ndarray],
    ids: np.ndarray,
    labels: np.ndarray,
    bins: np.ndarray,
    names: list[str],
    targets: dict[str, np.ndarray],
) -> pd.DataFrame:
    """One split's published table: index id; era, data_type, features, targets (not live)."""
    rows = (cells[0][pick], cells[1][pick])
    frame = pd.DataFrame(
        bins[rows], columns=names, index=pd.Index(ids[pick], name="id", dtype=object)
    )
    frame.insert(0, "data_type", split)
    frame.insert(0, "era", labels[pick])
    if split != LIVE:
        for column, values in targets.items():
            frame[column] = values[rows]
    return frame


def _encoded_features(
    panel: Panel, days: np.ndarray, include: np.ndarray, draws: np.ndarray, encoder: FeatureEncoder
) -> np.ndarray:
    """Raw features, computed and encoded a chunk of eras at a time to bound memory."""
    out = np.empty((len(days), len(panel.tickers), len(encoder.names)), dtype=np.int8)
    for start in range(0, len(days), CHUNK_ERAS):
        part = slice(start, start + CHUNK_ERAS)
        out[part] = encoder.encode(compute_features(panel, days[part]), include[part], draws[part])
    return out


def _check_era_sizes(include: np.ndarray, labels: list[str], minimum: int) -> None:
    counts = include.sum(axis=1)
    small = np.flatnonzero(counts < minimum)
    if len(small):
        shown = ", ".join(f"era {labels[i]}: {counts[i]}" for i in small[:5])
        raise PanelError(f"too few stocks per era (minimum {minimum}): {shown}")


FNC_FEATURE_SET = "fncv3_features"  # the set FNC neutralises against, as Numerai's
# Release sets, as Numerai names them: (name, share of the keyed order it starts at, ends at).
# The equivalents are prefixes of that order; the named releases follow one another.
RELEASE_SETS = (
    ("v2_equivalent_features", 0.0, 0.3),
    ("v3_equivalent_features", 0.0, 0.5),
    ("sunshine", 0.5, 0.65),
    ("rain", 0.65, 0.8),
    ("midnight", 0.8, 0.9),
    ("quantum", 0.9, 1.0),
)


def fnc_set_size(n_features: int, smallest_era: int, config: DatasetConfig) -> int:
    """How many features FNC neutralises against: few enough that the smallest era has
    `fnc_rows_per_feature` rows per feature (a regression on more features than rows
    explains every prediction and leaves FNC at 0)."""
    return int(np.clip(smallest_era // config.fnc_rows_per_feature, 1, n_features))


def _features_json(
    encoder: FeatureEncoder, keys: OperatorKeys, config: DatasetConfig, smallest_era: int
) -> dict[str, Any]:
    """Feature sets as Numerai ships them: small ⊂ medium ⊂ all, release sets, the eight
    group sets (which real group hides behind each name is keyed), and `fncv3_features`."""
    names = encoder.names
    in_order = names.index
    shuffled = [names[i] for i in keys.rng("feature-sets").permutation(len(names))]
    if config.small_fraction is not None:
        n_small = max(1, round(len(names) * config.small_fraction))
    else:
        n_small = min(config.small_size, len(names))
    n_medium = max(n_small, round(len(names) * config.medium_fraction))
    n_fnc = fnc_set_size(n_medium, smallest_era, config)
    sets: dict[str, list[str]] = {
        "small": sorted(shuffled[:n_small], key=in_order),
        "medium": sorted(shuffled[:n_medium], key=in_order),
        "all": names,
        FNC_FEATURE_SET: sorted(shuffled[:n_fnc], key=in_order),
    }
    released = [names[i] for i in keys.rng("feature-releases").permutation(len(names))]
    for set_name, start, end in RELEASE_SETS:
        chosen = released[round(start * len(names)) : round(end * len(names))]
        sets[set_name] = sorted(chosen, key=in_order)
    for label in sorted(set(encoder.group_label.values())):
        sets[label] = [f.name for f in encoder.features if f.group_label == label]
    return {"feature_sets": sets, "targets": [MAIN_TARGET, *config.targets.columns]}


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
