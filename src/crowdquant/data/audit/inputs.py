"""What the audit reads (a build or a written version, plus the panel) and the eras it samples."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from crowdquant.data.config import DatasetConfig
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import BuiltDataset, era_grid
from crowdquant.data.release import DatasetVersion
from crowdquant.data.splits import LIVE, PUBLISHED_SPLITS, TRAIN, VALIDATION


def _example_corr(summary: dict[str, Any]) -> float:
    return float(summary["example_validation_corr"]["mean"])


@dataclass
class AuditInput:
    frames: dict[str, pd.DataFrame]  # published train / validation / live
    features: list[str]  # published feature names, in column order
    id_map: pd.DataFrame  # operator only: id → era, ticker, date (the ground truth)
    feature_map: list[dict[str, str]]  # operator only: published name → real source
    panel: Panel  # the operator's raw panel = the attacker's public data
    example_validation_corr: float  # utility, reported beside the attacks
    config: DatasetConfig

    @classmethod
    def from_built(cls, built: BuiltDataset, panel: Panel, config: DatasetConfig) -> AuditInput:
        return cls(
            frames={s: built.frames[s] for s in PUBLISHED_SPLITS if s in built.frames},
            features=list(built.features_json["feature_sets"]["all"]),
            id_map=built.id_map,
            feature_map=list(built.feature_map),
            panel=panel,
            example_validation_corr=_example_corr(built.summary),
            config=config,
        )

    @classmethod
    def from_version(cls, version: DatasetVersion, panel: Panel) -> AuditInput:
        return cls(
            frames={s: version.frame(s) for s in PUBLISHED_SPLITS},
            features=list(version.features_json()["feature_sets"]["all"]),
            id_map=version.id_map(),
            feature_map=version.feature_map(),
            panel=panel,
            example_validation_corr=_example_corr(version.build_info()["summary"]),
            config=version.config(),
        )

    def published(self) -> pd.DataFrame:
        """All published rows (train, validation, live) with era and data_type."""
        return pd.concat([f for f in self.frames.values() if len(f)], axis=0)

    def group_labels(self) -> list[str]:
        """The published (meaningless) group label of each feature, in column order."""
        label = {f["name"]: f.get("group_label", "") for f in self.feature_map}
        return [label.get(name, "") for name in self.features]


@dataclass
class EraSample:
    """One published era, with its ground truth."""

    label: str
    split: str
    date: str
    day: int  # the panel row of the era's date
    grid_index: int  # position among the panel's weekly era dates
    bins: np.ndarray  # (rows, features) int8: every row of the era
    tickers: np.ndarray  # (rows,) panel column of each row (ground truth, from id_map)
    kept: np.ndarray  # (rows,) bool: the rows the row-level attacks use (at most max_rows)

    @property
    def kept_bins(self) -> np.ndarray:
        return np.asarray(self.bins[self.kept])

    @property
    def kept_tickers(self) -> np.ndarray:
        return np.asarray(self.tickers[self.kept])


@dataclass
class AuditSample:
    """A block of consecutive published eras; the last one only serves as a linkage successor."""

    eras: list[EraSample]
    n_attacked: int  # the first n_attacked eras are the sampled ones
    subset: np.ndarray  # bool per panel ticker: the stocks the row-level attacks use

    @property
    def attacked(self) -> list[EraSample]:
        return self.eras[: self.n_attacked]


def era_frame(data: AuditInput, label: str) -> pd.DataFrame:
    for frame in data.frames.values():
        if len(frame) and (frame["era"] == label).any():
            return frame[frame["era"] == label]
    raise KeyError(f"era {label} is not published")


def _runs(labels: list[int]) -> list[list[int]]:
    """Maximal runs of consecutive era numbers."""
    runs: list[list[int]] = []
    for x in sorted(labels):
        if runs and x == runs[-1][-1] + 1:
            runs[-1].append(x)
        else:
            runs.append([x])
    return runs


def choose_block(data: AuditInput, eras: int, rng: np.random.Generator) -> list[str]:
    """eras + 1 consecutive published eras, validation first, then train, then any."""
    by_split: dict[str, list[str]] = {}
    for split, frame in data.frames.items():
        if len(frame):
            by_split[split] = sorted(frame["era"].unique())
    width = {len(x) for labels in by_split.values() for x in labels}
    pad = max(width) if width else 4
    length = eras + 1
    for split in (VALIDATION, TRAIN):
        labels = [int(x) for x in by_split.get(split, [])]
        starts = [r[i] for r in _runs(labels) for i in range(len(r) - length + 1)]
        if starts:
            start = int(rng.choice(starts))
            return [f"{start + k:0{pad}d}" for k in range(length)]
    labels = sorted(int(x) for s, v in by_split.items() if s != LIVE for x in v)
    if not labels:
        raise ValueError("no published eras to audit")
    longest = max(_runs(labels), key=len)
    return [f"{x:0{pad}d}" for x in longest[:length]]


def sample_eras(data: AuditInput, eras: int, max_rows: int, seed: int) -> AuditSample:
    """A deterministic block of consecutive eras and a subset of at most max_rows stocks."""
    rng = np.random.default_rng(seed)
    block = choose_block(data, max(eras, 1), rng)
    truth = data.id_map.set_index("id")
    column = {t: i for i, t in enumerate(data.panel.tickers)}
    grid = era_grid(data.panel)
    grid_index = {d: i for i, d in enumerate(grid.dates)}
    samples: list[EraSample] = []
    for label in block:
        frame = era_frame(data, label)
        rows = truth.loc[frame.index]
        date = str(rows["date"].iloc[0])
        unknown = set(rows["ticker"]) - set(column)
        if date not in grid_index or unknown:
            raise ValueError(
                f"the panel does not match the dataset: era {label} ({date}) "
                + (
                    f"has tickers not in the panel, e.g. {sorted(unknown)[:3]}"
                    if unknown
                    else "is not one of the panel's weekly era dates"
                )
            )
        samples.append(
            EraSample(
                label=label,
                split=str(frame["data_type"].iloc[0]),
                date=date,
                day=int(grid.days[grid_index[date]]),
                grid_index=grid_index[date],
                bins=frame[data.features].to_numpy(np.int8),
                tickers=np.array([column[t] for t in rows["ticker"]], dtype=np.int64),
                kept=np.ones(len(frame), dtype=bool),
            )
        )
    present = np.unique(np.concatenate([s.tickers for s in samples]))
    if len(present) > max_rows:
        present = np.sort(rng.choice(present, size=max_rows, replace=False))
    subset = np.zeros(len(data.panel.tickers), dtype=bool)
    subset[present] = True
    for s in samples:
        s.kept = subset[s.tickers]
    attacked = len(samples) - 1 if len(samples) > 1 else 1
    return AuditSample(samples, attacked, subset)
