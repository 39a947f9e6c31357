"""The fund's backtest: per era, signal → book → realised P&L after costs.

For each rebalance era (every `rebalance_every`-th era of the signal), at the era day d:

1. the signal (ticker → value; from predictions through the operator's id map) and each
   ticker's market beta at d (`data.features.market_beta`) go to the portfolio builder,
   with the book held until then (drifted by its returns) as the previous book;
2. the book is traded at the close of d + lag (the target's lag: the time to collect
   predictions and trade) — a ticker without a price that day cannot be held;
3. it is held until the next rebalance trades, at most the target's horizon:
   to the close of min(d_next, d + horizon) + lag (the last book: as long as the others);
4. its P&L over that span is booked after costs (`pnl.book_pnl`), from the panel's prices.

So consecutive periods join end to start and the equity curve compounds them. With
`rebalance_every` = horizon / 5 (4 for the default 20-day target) each book is held exactly
over its target's horizon; the default, 1, rebalances every era as the live fund does each
round, with the turnover limit against the previous book.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from crowdquant.data.config import DatasetConfig
from crowdquant.data.release import DatasetVersion
from crowdquant.data.splits import VALIDATION
from crowdquant.fund.costs import CostModel
from crowdquant.fund.market import Market, signals_from_predictions, version_panel
from crowdquant.fund.pnl import Performance, book_pnl, drawdown, equity_curve, performance
from crowdquant.fund.portfolio import Portfolio, PortfolioBuilder, PortfolioLimits

BACKTEST_VERSION = "era-rebalance-v1"


class BacktestConfig(BaseModel):
    """How the backtest trades: timing, the portfolio limits and the cost model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    lag: int = Field(2, ge=0, description="trading days from the era day to the trade")
    horizon: int = Field(20, ge=1, description="the longest a book is held, in trading days")
    rebalance_every: int = Field(1, ge=1, description="eras between rebalances")
    beta_window: int = Field(252, ge=2, description="daily returns in each beta estimate")
    limits: PortfolioLimits = PortfolioLimits()
    costs: CostModel = CostModel()
    version: str = BACKTEST_VERSION

    @classmethod
    def for_dataset(cls, config: DatasetConfig, **changes: object) -> BacktestConfig:
        """The timing of a dataset version's main target (lag, horizon), with `changes`."""
        timing = {"lag": config.targets.lag, "horizon": config.targets.horizon}
        return cls.model_validate({**timing, **changes})


@dataclass(frozen=True)
class BacktestResult:
    """One signal's backtest: a row per rebalance, each book, the summary."""

    name: str
    pnl: pd.DataFrame  # index: era date; era, start, end, days, gross, cost, net, traded, ...
    portfolios: tuple[Portfolio, ...]
    performance: Performance
    config: BacktestConfig

    @property
    def equity(self) -> pd.Series:
        return equity_curve(self.pnl["net"])

    @property
    def drawdown(self) -> pd.Series:
        return drawdown(self.equity)

    @property
    def relaxed(self) -> int:
        """How many books needed their turnover limit relaxed (or went flat)."""
        return sum(p.status != "optimal" for p in self.portfolios)


PNL_COLUMNS = [
    "era",
    "start",
    "end",
    "days",
    "gross",
    "cost",
    "net",
    "traded",
    "gross_exposure",
    "positions",
    "status",
]


def run_backtest(
    market: Market,
    signals: pd.DataFrame,
    config: BacktestConfig | None = None,
    *,
    name: str = "signal",
    labels: pd.Series | None = None,
    builder: PortfolioBuilder | None = None,
) -> BacktestResult:
    """Backtest a signal: `signals` is era dates × tickers (NaN: no view), dates in order.

    `labels` maps era dates to era labels for the table; `builder` (for the market's
    tickers and sectors, with `config.limits`) may be shared between runs to compile once.
    """
    config = config or BacktestConfig()
    if not signals.index.is_monotonic_increasing or not signals.index.is_unique:
        raise ValueError("signal dates must be unique and in order")
    unknown = signals.columns.difference(market.panel.close.columns)
    if len(unknown):
        raise ValueError(
            f"{len(unknown)} signal ticker(s) are not in the panel, e.g. {unknown[0]!r}"
        )
    builder = builder or PortfolioBuilder(market.tickers, market.sectors, config.limits)
    if builder.limits != config.limits:
        raise ValueError("the builder's limits differ from the config's")
    dates = pd.DatetimeIndex(signals.index)[:: config.rebalance_every]
    frame = signals.reindex(index=dates, columns=market.panel.close.columns)
    days = [market.day(d) for d in dates]
    # the last book is held as long as the others were (its horizon, if it is alone)
    spacing = int(np.median(np.diff(days))) if len(days) > 1 else config.horizon
    betas = market.betas(dates)
    rows: list[dict[str, object]] = []
    books: list[Portfolio] = []
    previous: pd.Series | None = None
    for k, (date, day) in enumerate(zip(dates, days, strict=True)):
        start = day + config.lag
        following = days[k + 1] if k + 1 < len(days) else day + spacing
        end = min(following, day + config.horizon) + config.lag
        end = min(end, market.n_days - 1)
        if end <= start:
            break  # the panel ends before this book could earn anything
        beta = betas.iloc[k].where(market.priced(start))
        book = builder.build(frame.iloc[k], beta, previous)
        booked = book_pnl(
            book.weights, market.returns(start, end), config.costs, previous, days=end - start
        )
        books.append(book)
        rows.append(
            {
                "era": None if labels is None else labels.get(date),
                "start": market.panel.dates[start],
                "end": market.panel.dates[end],
                "days": end - start,
                "gross": booked.gross,
                "cost": booked.cost,
                "net": booked.net,
                "traded": booked.traded,
                "gross_exposure": book.gross,
                "positions": book.n_positions,
                "status": book.status,
            }
        )
        previous = booked.drifted
    table = pd.DataFrame(rows, columns=PNL_COLUMNS, index=dates[: len(rows)])
    table.index.name = "date"
    return BacktestResult(
        name=name,
        pnl=table,
        portfolios=tuple(books),
        performance=performance(table),
        config=config,
    )


class VersionBacktest:
    """Backtests of predictions for one split of a dataset version (validation by default).

    Loads the version's private panel and id map once; `run` maps predictions (indexed by
    the split's ids) to tickers and backtests them with one compiled portfolio problem.
    """

    def __init__(
        self,
        version: DatasetVersion,
        config: BacktestConfig | None = None,
        *,
        split: str = VALIDATION,
    ) -> None:
        self.version = version
        self.config = config or BacktestConfig.for_dataset(version.config())
        self.split = split
        self.market = Market(version_panel(version), self.config.beta_window)
        id_map = version.id_map()
        self.id_map = id_map[id_map["data_type"] == split].reset_index(drop=True)
        eras = version.eras()
        eras = eras[eras["data_type"] == split]
        self.labels = pd.Series(eras["era"].to_numpy(), index=pd.to_datetime(eras["date"]))
        self.builder = PortfolioBuilder(
            self.market.tickers, self.market.sectors, self.config.limits
        )

    @property
    def ids(self) -> pd.Index:
        return pd.Index(self.id_map["id"].astype(str), name="id")

    def signals(self, predictions: pd.Series) -> pd.DataFrame:
        return signals_from_predictions(predictions, self.id_map)

    def run(self, name: str, predictions: pd.Series) -> BacktestResult:
        return run_backtest(
            self.market,
            self.signals(predictions),
            self.config,
            name=name,
            labels=self.labels,
            builder=self.builder,
        )
