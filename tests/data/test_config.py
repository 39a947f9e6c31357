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


def test_the_main_target_is_one_of_the_published_family() -> None:
    assert TargetConfig().main_target == "target_ender_20"
    assert TargetConfig(lag=1, horizon=3).main_target == "target_ender_3"
    chosen = TargetConfig(main="target_victor_60", main_construction="factor_neutral")
    assert (chosen.main_name, chosen.main_horizon, chosen.span_eras) == ("victor", 60, 13)
    assert "target_xerxes_20" in chosen.columns and len(chosen.columns) == 12
    with pytest.raises(ValidationError, match="is not one of"):
        TargetConfig(main="target_nobody_20")
    with pytest.raises(ValidationError, match="is not one of"):
        TargetConfig(main_construction="astrology")


def test_a_60_day_main_target_needs_a_longer_embargo() -> None:
    with pytest.raises(ValidationError, match="shorter than the main target's reach of 13"):
        DatasetConfig(targets=TargetConfig(main="target_ender_60"))
    DatasetConfig(targets=TargetConfig(main="target_ender_60"), splits=SplitConfig(embargo_eras=13))
