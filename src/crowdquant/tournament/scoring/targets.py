"""Where a round's targets come from: the market that published its live era.

A `TargetSource` says how far a round's horizon has run and gives its targets after any
number of days; `FeedTargets` answers from the `MarketFeed` that published the round,
asking the feed for the live era's rows (their ids, operator-only tickers and betas, not
their features) by the round's recorded market date: the feed keeps the eras it published,
and makes again any it let go.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Protocol

import pandas as pd

from crowdquant.data.feed import LiveEra, MarketFeed
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import MAIN_TARGET
from crowdquant.db.models import Round
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rounds import same_day

RESIDUAL = "residual_return"


class ScoringError(ServiceError):
    code = "scoring_error"


# --- where targets come from -----------------------------------------------------------------


class TargetSource(Protocol):
    """The market's side of scoring: how far a round's horizon has run, and its targets."""

    @property
    def horizon(self) -> int:
        """Days in the full horizon: day `horizon` gives the final target."""
        ...

    def days_known(self, round_: Round, now: datetime) -> int:
        """How many days of the round's horizon the market has closed by `now` (0..horizon)."""
        ...

    def targets(self, round_: Round, day: int) -> pd.DataFrame:
        """Index id; columns `target` and `residual_return` after `day` days."""
        ...


class FeedTargets:
    """Targets from the `MarketFeed` that published the round's live era.

    `market_date` is the publisher's mapping from calendar to market dates; a day of the
    horizon counts as known once the market date of the day before today has passed it.
    """

    def __init__(self, feed: MarketFeed, market_date: Callable[[date], date] = same_day) -> None:
        self.feed, self.market_date = feed, market_date

    @property
    def horizon(self) -> int:
        return self.feed.config.targets.main_horizon

    @property
    def lag(self) -> int:
        """Trading days from an era's close to the first day its target counts."""
        return self.feed.config.targets.lag

    def live_era(self, round_: Round) -> LiveEra:
        """The round's live rows as published (their ids), with their operator-only tickers,
        betas and exposures; not their features."""
        if round_.market_date is None:
            raise ScoringError(f"round {round_.number} does not record its market date")
        date = pd.Timestamp(round_.market_date)
        return self.feed.live_era(round_.number, round_.live_era, date, features=False)

    def as_of(self, now: datetime) -> pd.Timestamp:
        """The last market day whose close is known at `now` (the day before, mapped)."""
        return pd.Timestamp(self.market_date((now - timedelta(days=1)).date()))

    def panel_known(self, now: datetime) -> Panel:
        """The market as known at `now` (operator only: real tickers and prices)."""
        return self.feed.panel_through(self.as_of(now))

    def trading_day_after(self, day: date, offset: int) -> date:
        return self.feed.market.trading_day_after(pd.Timestamp(day), offset).date()

    def days_known(self, round_: Round, now: datetime) -> int:
        return self.feed.days_known(self.live_era(round_), self.as_of(now))

    def targets(self, round_: Round, day: int) -> pd.DataFrame:
        frame = self.feed.targets(self.live_era(round_), day)
        return frame[[MAIN_TARGET, RESIDUAL]]
