"""The keyed recipe that turns raw feature values into published columns.

Fixed for a dataset version (names, column order, groups, mixing, tie-break salts), so the
live eras a feed publishes later look exactly like the history participants trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from crowdquant.data.anonymise import (
    equal_count_bins,
    gaussian_ranks,
    mix64,
    mixing_matrix,
    published_feature_names,
)
from crowdquant.data.config import AnonymisationConfig
from crowdquant.data.features import FeatureSpec
from crowdquant.data.keys import OperatorKeys

GROUP_LABELS = (
    "intelligence", "wisdom", "charisma", "dexterity",
    "strength", "constitution", "agility", "serenity",
)  # fmt: skip  # Numerai's group set names


@dataclass(frozen=True)
class PublishedFeature:
    name: str  # what participants see
    source: str  # the real feature (or mixed group component) it comes from; operator only
    group: str  # the real group; operator only
    group_label: str  # the meaningless label published in features.json


class FeatureEncoder:
    def __init__(self, keys: OperatorKeys, specs: list[FeatureSpec], config: AnonymisationConfig):
        self.keys, self.specs, self.config = keys, specs, config
        groups = sorted({s.group for s in specs})
        # keyed: which real group hides behind which name (with more groups than names,
        # some names hold two)
        rng = keys.rng("group-labels")
        names = [GROUP_LABELS[i] for i in rng.permutation(len(GROUP_LABELS))]
        order = rng.permutation(len(groups))
        self.group_label = {g: names[int(order[i]) % len(names)] for i, g in enumerate(groups)}
        sources = [self._source_name(i) for i in range(len(specs))]
        names = published_feature_names(keys, sources)
        self.order = keys.rng("feature-order").permutation(len(specs))
        self.features = [
            PublishedFeature(names[i], sources[i], specs[i].group, self.group_label[specs[i].group])
            for i in self.order
        ]
        salts = keys.rng("tiebreak-salts").integers(0, 2**63, size=len(specs), dtype=np.uint64)
        self.salts = [int(s) for s in salts]

    def _source_name(self, position: int) -> str:
        """The real feature, or with mixing the k-th mixed component of its group."""
        spec = self.specs[position]
        if not self.config.mixing:
            return spec.name
        k = sum(1 for s in self.specs[:position] if s.group == spec.group)
        return f"{spec.group}/mix{k}"

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    def encode(self, raw: np.ndarray, include: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """Bins (eras, tickers, features) int8 in published column order; -1 where excluded."""
        values = self._mixed(raw, include, draws) if self.config.mixing else raw
        out = np.empty(raw.shape, dtype=np.int8)
        for column, f in enumerate(self.order):
            out[:, :, column] = equal_count_bins(
                values[:, :, f], include, mix64(draws, self.salts[f]), self.config.missing_bin
            )
        return out

    def _mixed(self, raw: np.ndarray, include: np.ndarray, draws: np.ndarray) -> np.ndarray:
        """Within each group, rotate the Gaussianised ranks by the group's secret matrix."""
        mixed = np.empty(raw.shape, dtype=np.float32)
        for group in self.group_label:
            members = [i for i, s in enumerate(self.specs) if s.group == group]
            gauss = np.stack(
                [
                    gaussian_ranks(raw[:, :, i], include, mix64(draws, self.salts[i]))
                    for i in members
                ],
                axis=-1,
            )
            rotated = gauss @ mixing_matrix(self.keys, group, len(members))
            mixed[:, :, members] = rotated.astype(np.float32)
        return mixed
