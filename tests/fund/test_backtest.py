"""The backtest: the planted alpha earns its sign, a shuffled signal earns ≈ 0 after costs,
and every book of every run meets every constraint."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crowdquant.data.config import DatasetConfig, TargetConfig
from crowdquant.data.release import DatasetVersion
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket
from crowdquant.fund.backtest import (
    BacktestConfig,
    BacktestResult,
    VersionBacktest,
    run_backtest,
)
from crowdquant.fund.market import Market
from crowdquant.fund.portfolio import PortfolioBuilder, PortfolioLimits, check_constraints

# A market strong enough to decide in seconds: the planted alpha is 10 bp a day per unit of
# signal; 300 stocks; the alpha starts once 126 days of history exist (week 26).
PLANTED = SyntheticConfig(n_stocks=300, n_weeks=110, seed=1, alpha_strength=1e-3)
WEEKLY = BacktestConfig(lag=0, horizon=5, beta_window=63)  # trade at the era close, hold a week


def assert_every_book_valid(market: Market, result: BacktestResult) -> None:
    assert len(result.portfolios) == len(result.pnl)
    betas = market.betas(pd.DatetimeIndex(result.pnl.index))
    for k, (book, start) in enumerate(zip(result.portfolios, result.pnl["start"], strict=True)):
        beta = betas.iloc[k].where(market.priced(market.day(start)))
        assert check_constraints(book, beta, market.sectors) == [], result.pnl.index[k]


@pytest.fixture(scope="module")
def planted() -> tuple[Market, pd.DataFrame]:
    synthetic = SyntheticMarket(PLANTED)
    alpha = synthetic.alpha().iloc[28:]  # the eras after the warm-up
    return Market(synthetic.panel(), WEEKLY.beta_window), alpha


@pytest.fixture(scope="module")
def runs(planted: tuple[Market, pd.DataFrame]) -> dict[str, BacktestResult]:
    market, alpha = planted
    rng = np.random.default_rng(7)
    shuffled = pd.DataFrame(
        [rng.permutation(row) for row in alpha.to_numpy()], index=alpha.index, columns=alpha.columns
    )
    builder = PortfolioBuilder(market.tickers, market.sectors, WEEKLY.limits)
    return {
        name: run_backtest(market, signal, WEEKLY, name=name, builder=builder)
        for name, signal in (("planted", alpha), ("shuffled", shuffled))
    }


def t_stat(values: pd.Series) -> float:
    return float(values.mean() / (values.std() / np.sqrt(len(values))))


def test_the_planted_alpha_earns_its_sign_after_costs(runs: dict[str, BacktestResult]) -> None:
    result = runs["planted"]
    pnl = result.pnl
    assert len(pnl) >= 75
    assert pnl["cost"].mean() > 0
    assert t_stat(pnl["net"]) > 4.0  # expected about 8 on this market
    assert result.performance.sharpe > 2.0
    assert result.performance.annual_return > 0


def test_a_shuffled_signal_earns_nothing_but_its_costs(runs: dict[str, BacktestResult]) -> None:
    pnl = runs["shuffled"].pnl
    assert abs(t_stat(pnl["gross"])) < 3.0  # ≈ 0 before costs
    se = pnl["net"].std() / np.sqrt(len(pnl))
    assert abs(pnl["net"].mean() + pnl["cost"].mean()) < 3 * se  # ≈ −costs after them
    planted = runs["planted"].pnl["net"]
    gap = planted.mean() - pnl["net"].mean()
    assert gap > 4 * np.hypot(se, planted.std() / np.sqrt(len(planted)))


def test_every_book_of_both_runs_meets_every_constraint(
    planted: tuple[Market, pd.DataFrame], runs: dict[str, BacktestResult]
) -> None:
    market, _ = planted
    for result in runs.values():
        assert_every_book_valid(market, result)
        assert (result.pnl["gross_exposure"] <= WEEKLY.limits.max_gross + 1e-6).all()
        limit = WEEKLY.limits.max_turnover
        assert limit is not None
        for book, traded in zip(result.portfolios[1:], result.pnl["traded"].iloc[1:], strict=True):
            assert traded == pytest.approx(book.turnover)  # traded against the drifted book
            assert book.status != "optimal" or traded <= limit + 1e-6


def test_periods_join_end_to_start_and_pnl_matches_the_prices(
    planted: tuple[Market, pd.DataFrame], runs: dict[str, BacktestResult]
) -> None:
    market, _ = planted
    result = runs["planted"]
    pnl = result.pnl
    assert (pnl["start"].iloc[1:].to_numpy() == pnl["end"].iloc[:-1].to_numpy()).all()
    assert (pnl["days"] == 5).all()
    for k in (0, 10, len(pnl) - 1):
        start, end = market.day(pnl["start"].iloc[k]), market.day(pnl["end"].iloc[k])
        gross = float(result.portfolios[k].weights @ market.returns(start, end))
        assert pnl["gross"].iloc[k] == pytest.approx(gross, abs=1e-12)
    assert result.equity.iloc[-1] == pytest.approx(np.prod(1 + pnl["net"]))


def test_holding_each_book_over_its_horizon(planted: tuple[Market, pd.DataFrame]) -> None:
    market, alpha = planted
    config = BacktestConfig(lag=2, horizon=20, rebalance_every=4, beta_window=63)
    result = run_backtest(market, alpha.iloc[:40], config)
    pnl = result.pnl
    assert len(pnl) == 10
    assert (pnl["days"] == 20).all()
    first = market.day(pd.Timestamp(pnl.index[0]))
    assert market.day(pnl["start"].iloc[0]) == first + 2
    assert market.day(pnl["end"].iloc[-1]) == market.day(pd.Timestamp(pnl.index[-1])) + 22
    alone = run_backtest(market, alpha.iloc[:1], config)  # a lone book: held over its horizon
    assert alone.pnl["days"].tolist() == [20]
    assert_every_book_valid(market, result)


def test_the_backtest_stops_where_the_prices_do(planted: tuple[Market, pd.DataFrame]) -> None:
    market, alpha = planted
    last = alpha.index[-1]
    result = run_backtest(market, alpha.loc[[last]], WEEKLY)
    assert len(result.pnl) == 0  # the panel ends on the last era day: nothing to earn
    assert result.performance.periods == 0


def test_bad_inputs_are_refused(planted: tuple[Market, pd.DataFrame]) -> None:
    market, alpha = planted
    with pytest.raises(ValueError, match="in order"):
        run_backtest(market, alpha.iloc[::-1], WEEKLY)
    with pytest.raises(ValueError, match="not in the panel"):
        run_backtest(market, alpha.rename(columns={alpha.columns[0]: "ZZZ"}), WEEKLY)
    other = PortfolioBuilder(market.tickers, market.sectors, PortfolioLimits(max_gross=1.0))
    with pytest.raises(ValueError, match="limits"):
        run_backtest(market, alpha, WEEKLY, builder=other)


def test_config_takes_the_timing_of_the_dataset() -> None:
    config = BacktestConfig.for_dataset(
        DatasetConfig(targets=TargetConfig(lag=1, horizon=10)), rebalance_every=2
    )
    assert (config.lag, config.horizon, config.rebalance_every) == (1, 10, 2)


def test_a_versions_example_predictions_backtest(built: DatasetVersion) -> None:
    backtest = VersionBacktest(built)
    example = built.example_predictions("validation")["prediction"]
    result = backtest.run("example", example)
    eras = built.eras()
    validation = eras[eras["data_type"] == "validation"]
    assert result.pnl["era"].tolist() == validation["era"].tolist()
    assert (result.pnl["status"] != "flat").all()
    assert (result.pnl["days"] <= backtest.config.horizon).all()
    assert result.pnl["positions"].min() > 0
    assert_every_book_valid(backtest.market, result)
