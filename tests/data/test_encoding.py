"""The keyed encoding: names and groups published under Numerai's eight group names."""

from __future__ import annotations

from crowdquant.data.config import AnonymisationConfig
from crowdquant.data.encoding import GROUP_LABELS, FeatureEncoder
from crowdquant.data.features import feature_specs
from crowdquant.data.keys import OperatorKeys


def _labels(master: bytes, has_volume: bool) -> dict[str, str]:
    encoder = FeatureEncoder(OperatorKeys(master), feature_specs(has_volume), AnonymisationConfig())
    return encoder.group_label


def test_real_groups_hide_behind_numerais_group_names() -> None:
    for has_volume in (False, True):
        labels = _labels(bytes(32), has_volume)
        assert set(labels.values()) == set(GROUP_LABELS)  # every name used, 8 or 9 groups
        assert len(labels) == len({s.group for s in feature_specs(has_volume)})


def test_which_group_is_behind_which_name_depends_on_the_key() -> None:
    first, second = _labels(bytes(32), True), _labels(bytes(range(32)), True)
    assert first == _labels(bytes(32), True)
    assert first != second
