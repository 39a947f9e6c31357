"""A served tournament's runtime, built from the market its dataset version was built from."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest

from crowdquant.data.build import build_version
from crowdquant.data.config import DatasetConfig, ExampleModelConfig
from crowdquant.data.feed import HistoricalMarket, SyntheticMovingMarket
from crowdquant.data.sources import FileSource, SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.db.models import Cadence, Rules, Tournament
from crowdquant.settings import Settings
from crowdquant.tournament.rounds import FeedPublisher
from crowdquant.tournament.rules2017_files import Rules2017Rounds
from crowdquant.tournament.runtime import NO_RUNTIME, tournament_runtime
from crowdquant.tournament.scoring import FeedTargets

from .live_market import KEYS, local_storage

MARKET = SyntheticConfig(n_stocks=30, n_weeks=110, seed=4)


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A home with the operator's keys and two built versions: one of a synthetic market
    (`synthetic`), one of a recorded price file (`recorded`)."""
    settings = Settings(home=tmp_path_factory.mktemp("home"))
    KEYS.save(settings.keyfile)
    panel = SyntheticMarket(MARKET).panel()
    prices = panel.close.stack().rename("close").rename_axis(["date", "ticker"]).reset_index()
    prices.to_csv(settings.home / "prices.csv", index=False)
    config = DatasetConfig(example_model=ExampleModelConfig(max_iter=5))
    for name, source in (
        ("synthetic", SyntheticSource(market=MARKET)),
        ("recorded", FileSource(path=settings.home / "prices.csv")),
    ):
        build_version(
            source, config, KEYS, settings.datasets_dir, settings.operator_dir, version=name
        )
    return settings


def tournament(version: str, rules: Rules = Rules.CLASSIC) -> Tournament:
    return Tournament(
        number=8, name="t", rules=rules, cadence=Cadence.DAILY, dataset_version=version
    )


def test_a_synthetic_market_publishes_scores_and_trades_as_it_generates_days(
    settings: Settings, tmp_path: Path
) -> None:
    runtime = tournament_runtime(settings, tournament("synthetic"), local_storage(tmp_path))
    assert isinstance(runtime.publisher, FeedPublisher)
    assert isinstance(runtime.publisher.feed.market, SyntheticMovingMarket)
    assert runtime.publisher.files_2017 is None
    assert isinstance(runtime.targets, FeedTargets)
    assert runtime.market is runtime.targets  # the fund trades the market that scores
    assert runtime.market_ends is None


def test_a_recorded_market_is_replayed_behind_the_calendar_up_to_its_last_day(
    settings: Settings, tmp_path: Path
) -> None:
    runtime = tournament_runtime(
        settings, tournament("recorded"), local_storage(tmp_path), replay_weeks=2
    )
    publisher = runtime.publisher
    assert isinstance(publisher, FeedPublisher)
    assert isinstance(publisher.feed.market, HistoricalMarket)
    last = pd.Timestamp(publisher.feed.market.panel.dates[-1]).date()
    assert runtime.market_ends == last
    before = last - timedelta(weeks=1)
    assert publisher.market_date(before) == before - timedelta(weeks=2)
    assert publisher.market_date(date(2100, 1, 4)) == last
    assert isinstance(runtime.targets, FeedTargets) and runtime.market is runtime.targets
    assert runtime.targets.market_date is publisher.market_date


def test_a_2017_tournament_also_publishes_its_2017_files(
    settings: Settings, tmp_path: Path
) -> None:
    legacy = tournament("synthetic", Rules.RULES2017)
    runtime = tournament_runtime(settings, legacy, local_storage(tmp_path))
    assert isinstance(runtime.publisher, FeedPublisher)
    assert isinstance(runtime.publisher.files_2017, Rules2017Rounds)


def test_no_runtime_means_no_rounds_no_scores_and_no_fund() -> None:
    assert NO_RUNTIME.publisher is None and NO_RUNTIME.targets is None
    assert NO_RUNTIME.market is None and NO_RUNTIME.market_ends is None
