import pytest

from crowdquant.data.config import SplitConfig
from crowdquant.data.splits import SplitError, split_eras


def test_splits_are_ordered_and_embargoed() -> None:
    splits = split_eras(
        200, SplitConfig(validation_fraction=0.2, holdout_fraction=0.1, embargo_eras=6)
    )
    assert splits.holdout[-1] == 199 and len(splits.holdout) == 20
    assert len(splits.validation) == 40
    assert splits.validation[0] - splits.train[-1] - 1 == 6
    assert splits.holdout[0] - splits.validation[-1] - 1 == 6
    labels = splits.label_of(200)
    assert (labels == "").sum() == 12


def test_no_holdout_means_no_second_embargo() -> None:
    splits = split_eras(100, SplitConfig(holdout_fraction=0.0, embargo_eras=5))
    assert len(splits.holdout) == 0 and splits.validation[-1] == 99


def test_too_few_eras_is_a_clear_error() -> None:
    with pytest.raises(SplitError, match="cannot hold a train split"):
        split_eras(12, SplitConfig(embargo_eras=5))
