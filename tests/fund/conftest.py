"""Shared fund fixtures: a small built dataset version (synthetic market) on disk."""

from __future__ import annotations

import pytest

from crowdquant.data.build import build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig

MARKET = SyntheticConfig(n_stocks=60, n_weeks=110, seed=3)


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> DatasetVersion:
    """A version built from a 60-stock synthetic market (one build per test worker)."""
    root = tmp_path_factory.mktemp("fund-built")
    version, _ = build_version(
        SyntheticSource(market=MARKET),
        DatasetConfig(example_model=ExampleModelConfig(max_iter=5)),
        OperatorKeys(bytes(range(32))),
        root / "datasets",
        root / "operator",
        version="v1",
    )
    return version
