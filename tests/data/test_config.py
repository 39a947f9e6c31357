import pytest
from pydantic import ValidationError

from crowdquant.data.config import DatasetConfig, SplitConfig, TargetConfig


def test_embargo_must_cover_the_target() -> None:
    with pytest.raises(ValidationError, match="shorter than the main target"):
        DatasetConfig(splits=SplitConfig(embargo_eras=4), targets=TargetConfig(lag=2, horizon=20))


def test_digest_is_stable_and_sensitive() -> None:
    assert DatasetConfig().digest() == DatasetConfig().digest()
    other = DatasetConfig(splits=SplitConfig(embargo_eras=7))
    assert other.digest() != DatasetConfig().digest()


def test_bad_target_proportions_are_refused() -> None:
    with pytest.raises(ValidationError, match="sum to 1"):
        TargetConfig(proportions=(0.1, 0.2, 0.5, 0.2, 0.1))
