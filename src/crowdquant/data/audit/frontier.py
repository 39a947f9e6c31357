"""The privacy frontier: the same eras re-encoded under other anonymisation settings.

For each setting (mixing off/on × universe sub-sampling none / 85–95 % / 50–70 %) the raw
features of the sampled era dates are encoded afresh, with FeatureEncoder and the
anonymise functions under new random keys, and attacked like the published data:
re-identification case (b) (the gate's number) and case (a) (the upper bound).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from crowdquant.data.anonymise import row_prf, subsample
from crowdquant.data.audit.library import PublicLibrary, correlation
from crowdquant.data.audit.reidentify import (
    EraTarget,
    attack_estimated,
    attack_known,
    correlated_correspondence,
    estimate_correspondence,
    known_correspondence,
)
from crowdquant.data.audit.semantics import feature_semantics, mean_spearman
from crowdquant.data.config import AnonymisationConfig
from crowdquant.data.encoding import FeatureEncoder
from crowdquant.data.features import feature_specs
from crowdquant.data.keys import OperatorKeys

SUBSAMPLES: tuple[tuple[float, float] | None, ...] = (None, (0.85, 0.95), (0.5, 0.7))
SETTINGS: tuple[tuple[bool, tuple[float, float] | None], ...] = tuple(
    (mixing, sub) for mixing in (False, True) for sub in SUBSAMPLES
)
CORRESPONDENCE_ERAS = 32  # extra re-encoded eras the attacker pools to match features


def subsample_label(sub: tuple[float, float] | None) -> str:
    return "none" if sub is None else f"{sub[0]:.0%}–{sub[1]:.0%}"


def setting_label(mixing: bool, sub: tuple[float, float] | None) -> str:
    return f"mixing {'on' if mixing else 'off'}, subsample {subsample_label(sub)}"


@dataclass(frozen=True)
class FrontierPoint:
    mixing: bool
    subsample: tuple[float, float] | None
    case_a_top1: float
    case_b_top1: float
    chance_top1: float
    semantics_above_0_9: float

    @property
    def label(self) -> str:
        return setting_label(self.mixing, self.subsample)


def frontier_keys(seed: int, repeat: int = 0) -> OperatorKeys:
    """Fresh keys for the re-encoding, reproducible from the audit's seed."""
    label = f"crowdquant-audit-frontier:{seed}:{repeat}"
    return OperatorKeys(hashlib.sha256(label.encode()).digest())


def small_universe_repeats(stocks: int) -> int:
    """Keys to average over: on a few dozen stocks one key's result is mostly luck."""
    return 1 if stocks >= 200 else 3


def evaluate_setting(
    library: PublicLibrary,
    attacked_days: np.ndarray,
    subset: np.ndarray,
    mixing: bool,
    sub: tuple[float, float] | None,
    missing_bin: int,
    library_corr: np.ndarray,
    keys: OperatorKeys,
) -> FrontierPoint:
    panel = library.panel
    pool = library.spaced_days(CORRESPONDENCE_ERAS)
    days = np.concatenate([attacked_days, pool[~np.isin(pool, attacked_days)]])
    eras = list(library.eras(days))
    n_tickers = len(panel.tickers)
    raw = np.full((len(days), n_tickers, len(library)), np.nan, dtype=np.float32)
    include = np.zeros((len(days), n_tickers), dtype=bool)
    for k, era in enumerate(eras):
        raw[k, era.tickers] = era.raw
        include[k, era.tickers] = True
    dates = [panel.dates[d].strftime("%Y-%m-%d") for d in days]
    draws = row_prf(keys.derive("ids:audit"), panel.tickers, dates, include)[..., 1]
    if sub is not None:
        include = subsample(include, draws, keys, f"audit:{mixing}:{sub}", sub)
    config = AnonymisationConfig(missing_bin=missing_bin, mixing=mixing, subsample=sub)
    encoder = FeatureEncoder(keys, feature_specs(panel.volume is not None), config)
    bins = encoder.encode(raw, include, draws)
    del raw

    released_corr = np.mean([correlation(bins[k][include[k]]) for k in range(len(days))], axis=0)
    groups = [f.group_label for f in encoder.features]
    case_b = estimate_correspondence(
        released_corr, library_corr, groups, library.groups, signed=not mixing
    )
    targets: list[EraTarget] = []
    aligned: list[np.ndarray] = []
    for k in range(len(attacked_days)):
        era = eras[k]
        keep = include[k] & subset
        released_tickers = np.flatnonzero(keep)
        candidates = subset[era.tickers]
        targets.append(
            EraTarget.build(
                bins[k][keep], released_tickers, era.tickers[candidates], era.gaussian[candidates]
            )
        )
        aligned.append(era.gaussian[era.rows(released_tickers)])
    cross = mean_spearman([t.released_bins for t in targets], aligned)
    names = [f.name for f in encoder.features]
    feature_map = [{"name": f.name, "source": f.source} for f in encoder.features]
    truth = known_correspondence(names, feature_map, library.names)
    scores_a = attack_known(targets, truth, correlated_correspondence(cross)).scores
    scores_b = attack_estimated(targets, case_b, try_flip=mixing).scores
    return FrontierPoint(
        mixing=mixing,
        subsample=sub,
        case_a_top1=float(np.mean([s.top1 for s in scores_a])),
        case_b_top1=float(np.mean([s.top1 for s in scores_b])),
        chance_top1=float(np.mean([s.chance_top1 for s in scores_b])),
        semantics_above_0_9=feature_semantics(cross).fraction_above(0.9),
    )


def privacy_frontier(
    library: PublicLibrary,
    attacked_days: np.ndarray,
    subset: np.ndarray,
    missing_bin: int,
    library_corr: np.ndarray,
    seed: int,
    repeats: int = 1,
) -> list[FrontierPoint]:
    """Every setting, averaged over `repeats` fresh keys."""
    points = []
    for mixing, sub in SETTINGS:
        runs = [
            evaluate_setting(
                library, attacked_days, subset, mixing, sub, missing_bin, library_corr,
                frontier_keys(seed, r),
            )
            for r in range(repeats)
        ]  # fmt: skip
        points.append(
            FrontierPoint(
                mixing=mixing,
                subsample=sub,
                case_a_top1=float(np.mean([p.case_a_top1 for p in runs])),
                case_b_top1=float(np.mean([p.case_b_top1 for p in runs])),
                chance_top1=float(np.mean([p.chance_top1 for p in runs])),
                semantics_above_0_9=float(np.mean([p.semantics_above_0_9 for p in runs])),
            )
        )
    return points
