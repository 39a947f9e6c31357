"""What a tournament runs on while it is served: one `TournamentRuntime` per tournament.

`tournament_runtime` builds it from the market the tournament's dataset version was built
from: the publisher of its live eras, the source of their targets for scoring, and the
market its fund trades (the market that scores the rounds, one object for both).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import pandas as pd

from crowdquant.data.feed import HistoricalMarket, MarketFeed, SyntheticMovingMarket
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources import SyntheticSource, load_panel, stored_source
from crowdquant.data.sources.synthetic import SyntheticMarket
from crowdquant.db.models import Round, Tournament
from crowdquant.fund.rounds import RoundMarket
from crowdquant.settings import Settings
from crowdquant.storage import FileStorage
from crowdquant.tournament.meta_model_file import RoundTickers, ValidationMetaModel
from crowdquant.tournament.rounds import FeedPublisher, LivePublisher, shift_weeks
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.rules2017_files import Rules2017Rounds
from crowdquant.tournament.scoring import FeedTargets, TargetSource


@dataclass(frozen=True)
class TournamentRuntime:
    """A tournament's live side; whatever is None, the tournament goes without."""

    publisher: LivePublisher | None = None
    """Publishes its live eras: without one, it gets no new rounds."""
    targets: TargetSource | None = None
    """Where its rounds' targets come from: without one, its rounds resolve unscored."""
    market: RoundMarket | None = None
    """The market its fund trades: without one, it keeps no fund."""
    market_ends: date | None = None
    """The last day of a recorded market (None for one that generates its days)."""
    meta_model: ValidationMetaModel | None = None
    """Publishes `meta_model.parquet` for the validation eras as rounds resolve."""


NO_RUNTIME = TournamentRuntime()
"""What a tournament without a runtime runs on: no new rounds, no scores, no fund."""


def tournament_runtime(
    settings: Settings, tournament: Tournament, storage: FileStorage, *, replay_weeks: int = 0
) -> TournamentRuntime:
    """The runtime over the market the tournament's dataset was built from.

    A 2017-rules tournament's rounds also publish their 2017 CSV files; each round publishes
    the version's benchmark models' predictions of its live era. A synthetic market
    goes on generating weeks as the calendar asks. A recorded panel is replayed as of the
    calendar's era date, or `replay_weeks` weeks before it (keeping weekdays); a date past
    its end shows the panel's last trading day (with fresh ids each round).
    """
    version = DatasetVersion.open(
        tournament.dataset_version, settings.datasets_dir, settings.operator_dir
    )
    config = version.config()
    keys = OperatorKeys.load(settings.keyfile)
    source = stored_source(version.build_info()["source"])
    files_2017 = (
        Rules2017Rounds(version, keys) if ruleset_of(tournament).publishes_2017_files else None
    )
    benchmarks = version.benchmark_models()
    if isinstance(source, SyntheticSource):
        market = SyntheticMovingMarket(SyntheticMarket(source.market))
        feed = MarketFeed(market, keys, config, has_volume=True)
        publisher = FeedPublisher(feed, storage, files_2017=files_2017, benchmarks=benchmarks)
        targets = FeedTargets(feed)
        meta_model = ValidationMetaModel(version, _tickers_of(targets))
        return TournamentRuntime(publisher, targets, targets, meta_model=meta_model)
    panel = load_panel(source, config.min_stocks_per_era)
    feed = MarketFeed(HistoricalMarket(panel), keys, config, has_volume=panel.volume is not None)
    last = pd.Timestamp(panel.dates[-1]).date()
    replayed = shift_weeks(replay_weeks)

    def market_date(day: date) -> date:
        return min(replayed(day), last)

    publisher = FeedPublisher(
        feed, storage, market_date=market_date, files_2017=files_2017, benchmarks=benchmarks
    )
    targets = FeedTargets(feed, market_date)
    meta_model = ValidationMetaModel(version, _tickers_of(targets))
    return TournamentRuntime(publisher, targets, targets, market_ends=last, meta_model=meta_model)


def _tickers_of(targets: FeedTargets) -> RoundTickers:
    """A round's live ids → tickers, from the feed that published it (operator only)."""

    def tickers(round_: Round) -> pd.Series:
        return targets.live_era(round_).tickers

    return tickers
