"""Era splits: train, validation and a host-only holdout, separated by embargoes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.data.config import SplitConfig

TRAIN, VALIDATION, HOLDOUT, LIVE = "train", "validation", "holdout", "live"
PUBLISHED_SPLITS = (TRAIN, VALIDATION, LIVE)


class SplitError(ValueError):
    """The panel is too short for the requested splits."""


@dataclass(frozen=True)
class EraSplits:
    """Positions (into the target-bearing eras) of each split, oldest first."""

    train: np.ndarray
    validation: np.ndarray
    holdout: np.ndarray

    def label_of(self, n_eras: int) -> np.ndarray:
        """Split name per target-bearing era; '' for embargoed eras."""
        labels = np.full(n_eras, "", dtype=object)
        for name in (TRAIN, VALIDATION, HOLDOUT):
            labels[getattr(self, name)] = name
        return labels


def split_eras(n_eras: int, config: SplitConfig) -> EraSplits:
    """Newest eras go to the holdout, the ones before to validation, the rest to train.

    An embargo of `embargo_eras` separates neighbouring splits, so no target of an
    earlier split overlaps the returns of the next one.
    """
    gap = config.embargo_eras
    n_holdout = round(n_eras * config.holdout_fraction)
    n_validation = max(1, round(n_eras * config.validation_fraction))
    holdout_start = n_eras - n_holdout
    validation_end = holdout_start - (gap if n_holdout else 0)
    validation_start = validation_end - n_validation
    train_end = validation_start - gap
    if train_end < 1:
        raise SplitError(
            f"{n_eras} eras with targets cannot hold a train split, {n_validation} validation "
            f"eras, {n_holdout} holdout eras and embargoes of {gap} eras"
        )
    return EraSplits(
        train=np.arange(0, train_end),
        validation=np.arange(validation_start, validation_end),
        holdout=np.arange(holdout_start, n_eras),
    )
