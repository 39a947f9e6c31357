"""A small moving market and its publisher, shared by the round and scheduler tests.

The clock runs in the synthetic market's own calendar (it starts on Monday 3 January 2000),
so a round's era date is a market date as it is: January 2001 has the year of history a
live era's features need.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime
from functools import cache
from pathlib import Path

import pandas as pd

from crowdquant.data.build import build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig
from crowdquant.data.feed import MarketFeed, SyntheticMovingMarket
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.storage import LocalStorage
from crowdquant.tournament.rounds import FeedPublisher

KEYS = OperatorKeys(bytes(range(32)))
MARKET = SyntheticConfig(n_stocks=40, n_weeks=70, seed=1)
MONDAY = datetime(2001, 1, 8, tzinfo=UTC)  # week 54 of the market: live eras labelled "0004"
TUESDAY_NOON = datetime(2001, 1, 9, 12, tzinfo=UTC)
VALIDATION_MARKET = SyntheticConfig(n_stocks=150, n_weeks=110, seed=3)


@cache
def market_feed() -> MarketFeed:
    """One feed per test process: the synthetic market caches the weeks it has generated."""
    market = SyntheticMovingMarket(SyntheticMarket(MARKET))
    return MarketFeed(market, KEYS, DatasetConfig(), has_volume=True)


def local_storage(root: Path) -> LocalStorage:
    return LocalStorage(root, fsync=False)


def feed_publisher(root: Path) -> FeedPublisher:
    return FeedPublisher(market_feed(), local_storage(root))


def stored_bytes(storage: LocalStorage, key: str) -> bytes:
    with storage.read(key) as chunks:
        return b"".join(chunks)


def read_parquet(storage: LocalStorage, key: str) -> pd.DataFrame:
    """A stored parquet file, read through the storage interface as a participant gets it."""
    return pd.read_parquet(io.BytesIO(stored_bytes(storage, key)))


def build_dataset_version(root: Path, version: str = "v1") -> DatasetVersion:
    """A built dataset version to publish, for the diagnostics tests: its validation eras
    (about 136 rows each) have more rows than the "medium" feature set has features, so
    feature-neutral scores mean something. Takes a few seconds: build it once per module."""
    built, _ = build_version(
        SyntheticSource(market=VALIDATION_MARKET),
        DatasetConfig(example_model=ExampleModelConfig(max_iter=5)),
        KEYS,
        root / "datasets",
        root / "operator",
        version=version,
    )
    return built
