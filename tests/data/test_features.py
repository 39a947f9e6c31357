"""Point-in-time features: the feature list, hand-checked values, and no look-ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import rankdata

from crowdquant.data.features import (
    GROUPS,
    MIN_HISTORY,
    compute_features,
    feature_specs,
    market_beta,
)
from crowdquant.data.panel import Panel

N_DAYS = 320
N_TICKERS = 30


def make_panel(
    *,
    seed: int = 0,
    n_days: int = N_DAYS,
    n_tickers: int = N_TICKERS,
    with_volume: bool = True,
    betas: np.ndarray | None = None,
    noise: float = 0.02,
) -> Panel:
    """Random walks driven by a market factor: r = beta · m + noise; four sectors."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2021-01-04", periods=n_days)
    tickers = [f"T{i:02d}" for i in range(n_tickers)]
    m = rng.normal(3e-4, 0.01, n_days)
    m[0] = 0.0
    beta = rng.uniform(0.3, 1.7, n_tickers) if betas is None else betas
    r = m[:, None] * beta + rng.normal(0.0, noise, (n_days, n_tickers))
    r[0] = 0.0
    close = rng.uniform(5.0, 200.0, n_tickers) * np.exp(np.cumsum(r, axis=0))
    volume = np.exp(rng.normal(13.0, 0.6, (n_days, n_tickers)))
    return Panel(
        close=pd.DataFrame(close, index=dates, columns=tickers),
        volume=pd.DataFrame(volume, index=dates, columns=tickers) if with_volume else None,
        sector=pd.Series([f"sector_{i % 4}" for i in range(n_tickers)], index=tickers),
        market=pd.Series(np.exp(np.cumsum(m)), index=dates),
        name="test",
    )


def with_close(panel: Panel, close: pd.DataFrame) -> Panel:
    return Panel(close, panel.volume, panel.sector, panel.market, panel.name)


def column(name: str, has_volume: bool = True) -> int:
    return [s.name for s in feature_specs(has_volume)].index(name)


ALL_DAYS = np.arange(N_DAYS)


@pytest.fixture(scope="module")
def panel() -> Panel:
    return make_panel()


@pytest.fixture(scope="module")
def features(panel: Panel) -> np.ndarray:
    return compute_features(panel, ALL_DAYS)


def test_feature_list_is_large_unique_and_grouped() -> None:
    prices, full = feature_specs(False), feature_specs(True)
    assert len(prices) >= 100
    assert len(full) - len(prices) >= 8
    assert full[: len(prices)] == prices  # price columns keep their positions
    names = [s.name for s in full]
    assert len(set(names)) == len(names)
    assert {s.group for s in full} == set(GROUPS)
    assert feature_specs(True) == full  # deterministic
    groups = {s.name: s.group for s in full}
    assert groups["momentum_126_21"] == "momentum"
    assert groups["return_5"] == "reversal"
    assert groups["volatility_63"] == "volatility"


def test_shape_dtype_and_price_columns_do_not_depend_on_volume(
    panel: Panel, features: np.ndarray
) -> None:
    assert features.shape == (N_DAYS, N_TICKERS, len(feature_specs(True)))
    assert features.dtype == np.float32
    no_volume = Panel(panel.close, None, panel.sector, panel.market, panel.name)
    prices = compute_features(no_volume, ALL_DAYS)
    assert prices.shape == (N_DAYS, N_TICKERS, len(feature_specs(False)))
    np.testing.assert_array_equal(prices, features[:, :, : prices.shape[2]])


def test_named_features_match_hand_computation() -> None:
    t = np.arange(200.0)[:, None]
    i = np.arange(1.0, 4.0)[None, :]
    close = 50.0 * np.exp(0.002 * i * t + 0.03 * np.sin(t * i / 7.0))  # 200 days × 3 stocks
    dates = pd.bdate_range("2022-01-03", periods=200)
    tickers = ["A", "B", "C"]
    hand = Panel(
        close=pd.DataFrame(close, index=dates, columns=tickers),
        volume=None,
        sector=pd.Series(["x", "x", "y"], index=tickers),
        market=pd.Series(np.linspace(1.0, 2.0, 200), index=dates),
        name="hand",
    )
    days = np.array([130, 170, 199])
    out = compute_features(hand, days)
    for k, d in enumerate(days):
        log_returns = np.diff(np.log(close[d - 63 : d + 1]), axis=0)  # days d-62 .. d
        expected = {
            "momentum_126_21": np.log(close[d - 21] / close[d - 126]),
            "return_5": np.log(close[d] / close[d - 5]),
            "volatility_63": log_returns.std(axis=0, ddof=1),
        }
        for name, value in expected.items():
            got = out[k, :, column(name, has_volume=False)]
            np.testing.assert_allclose(got, value, rtol=1e-5, atol=1e-7, err_msg=name)


def test_changing_later_data_changes_nothing_before(panel: Panel, features: np.ndarray) -> None:
    d = 280
    rng = np.random.default_rng(7)
    shock = np.exp(rng.normal(0.0, 0.3, (N_DAYS - d - 1, N_TICKERS)))
    close, volume, market = panel.close.copy(), panel.volume.copy(), panel.market.copy()
    assert volume is not None
    close.iloc[d + 1 :] *= shock
    close.iloc[d + 5, 3] = np.nan
    volume.iloc[d + 1 :] *= shock[::-1]
    market.iloc[d + 1 :] *= 1.5
    changed = Panel(close, volume, panel.sector, market, panel.name)
    after = compute_features(changed, ALL_DAYS)
    np.testing.assert_array_equal(after[: d + 1], features[: d + 1])
    assert not np.array_equal(after[d + 1 :], features[d + 1 :], equal_nan=True)
    np.testing.assert_array_equal(
        market_beta(changed, ALL_DAYS)[: d + 1], market_beta(panel, ALL_DAYS)[: d + 1]
    )
    truncated = compute_features(panel.until(panel.dates[d]), ALL_DAYS[: d + 1])
    np.testing.assert_allclose(truncated, features[: d + 1], rtol=1e-6, atol=1e-9)


def test_a_day_reads_only_its_last_min_history_rows(panel: Panel, features: np.ndarray) -> None:
    d = 300
    alone = compute_features(panel, np.array([d]))[0]
    np.testing.assert_allclose(alone, features[d], rtol=1e-5, atol=1e-7)
    rows = slice(d - (MIN_HISTORY - 1), d + 1)
    tail = Panel(panel.close.iloc[rows], None, panel.sector, panel.market.iloc[rows], panel.name)
    prices = len(feature_specs(False))
    np.testing.assert_allclose(
        compute_features(tail, np.array([MIN_HISTORY - 1]))[0], features[d, :, :prices], rtol=1e-5
    )


def test_nan_before_min_history_and_finite_after(features: np.ndarray) -> None:
    assert np.isnan(features[0]).all()
    assert np.isnan(features[MIN_HISTORY - 2]).any()
    assert np.isfinite(features[MIN_HISTORY - 1 :]).all()


@pytest.mark.parametrize("bad_price", [np.nan, 0.0])
def test_missing_price_blanks_every_window_containing_it(
    panel: Panel, features: np.ndarray, bad_price: float
) -> None:
    g, k = 150, 4
    close = panel.close.copy()
    close.iloc[g, k] = bad_price
    out = compute_features(with_close(panel, close), ALL_DAYS)

    window = np.arange(g - 20, g + 140)  # every named feature exists from day 126 on

    def finite_days(name: str) -> np.ndarray:
        return np.isfinite(out[window, k, column(name)])

    expected = {  # name → (first, last) day whose window holds day g's price
        "return_5": (g, g + 5),
        "momentum_126_21": (g + 21, g + 126),
        "volatility_63": (g, g + 63),  # returns on days g and g + 1 need that price
    }
    for name, (first, last) in expected.items():
        assert (finite_days(name) == ((window < first) | (window > last))).all(), name
    assert np.isnan(out[g, k, column("return_1")])
    assert np.isnan(out[g + 1, k, column("return_1")])
    # other tickers are untouched, except where a sector mean now lacks ticker k
    own = [j for j, s in enumerate(feature_specs(True)) if s.group != "sector_relative"]
    others = np.delete(np.arange(N_TICKERS), k)
    np.testing.assert_array_equal(out[:, others][..., own], features[:, others][..., own])


def test_ticker_not_yet_listed_is_nan_until_it_has_history(panel: Panel) -> None:
    listed, k = 40, 2
    close = panel.close.copy()
    close.iloc[:listed, k] = np.nan
    out = compute_features(with_close(panel, close), ALL_DAYS)[:, k]
    assert np.isnan(out[: listed + 1]).all()
    assert np.isnan(out[listed + MIN_HISTORY - 2]).any()
    assert np.isfinite(out[listed + MIN_HISTORY - 1 :]).all()


def test_missing_market_level_blanks_market_features_only(
    panel: Panel, features: np.ndarray
) -> None:
    g = 280
    market = panel.market.copy()
    market.iloc[g] = np.nan
    out = compute_features(Panel(panel.close, panel.volume, panel.sector, market, "m"), ALL_DAYS)
    assert np.isnan(out[g : g + 10, :, column("beta_63")]).all()
    assert np.isnan(out[g : g + 10, :, column("residual_return_5")]).all()
    np.testing.assert_array_equal(
        out[:, :, column("momentum_126_21")], features[:, :, column("momentum_126_21")]
    )


def test_sector_relative_features_have_zero_sector_mean(panel: Panel, features: np.ndarray) -> None:
    codes = panel.sector_codes()
    relative = [j for j, s in enumerate(feature_specs(True)) if s.group == "sector_relative"]
    assert len(relative) >= 5
    values = features[MIN_HISTORY:][:, :, relative].astype(np.float64)
    for code in np.unique(codes):
        means = values[:, codes == code].mean(axis=1)
        scale = np.abs(values[:, codes == code]).max(axis=1) + 1e-12
        assert (np.abs(means) <= 1e-5 * scale).all()


def test_market_beta_recovers_planted_beta() -> None:
    betas = np.linspace(-0.5, 2.0, 20)
    planted = make_panel(seed=3, n_tickers=20, betas=betas, noise=0.004, n_days=300)
    days = np.array([251, 252, 280, 299])
    beta = market_beta(planted, days)
    assert beta.dtype == np.float64
    assert np.isnan(beta[0]).all()  # day 251 has 251 returns: one short
    np.testing.assert_allclose(beta[1:], np.broadcast_to(betas, (3, 20)), atol=0.1)
    r = np.diff(np.log(planted.close.to_numpy()[299 - 252 :]), axis=0)
    m = np.diff(np.log(planted.market.to_numpy()[299 - 252 :]))
    ols = np.polyfit(m, r, 1)[0]
    np.testing.assert_allclose(beta[-1], ols, rtol=1e-8)
    stored = compute_features(planted, days)[:, :, column("beta_252")]
    np.testing.assert_allclose(stored, beta, rtol=1e-5)


def test_no_two_features_rank_alike(features: np.ndarray) -> None:
    eras = features[MIN_HISTORY::5]  # (eras, tickers, features), all finite
    ranks = rankdata(eras, axis=1).transpose(2, 0, 1).reshape(eras.shape[2], -1)
    corr = np.corrcoef(ranks)
    np.fill_diagonal(corr, 0.0)
    names = [s.name for s in feature_specs(True)]
    i, j = np.unravel_index(np.argmax(np.abs(corr)), corr.shape)
    assert np.abs(corr).max() < 0.9999, (names[i], names[j])


def test_value_ranges(features: np.ndarray) -> None:
    def values(name: str) -> np.ndarray:
        return features[MIN_HISTORY:, :, column(name)]

    assert (values("drawdown_252") <= 0).all()
    assert (values("rebound_252") >= 0).all()
    assert ((values("range_position_63") >= 0) & (values("range_position_63") <= 1)).all()
    assert ((values("up_fraction_21") >= 0) & (values("up_fraction_21") <= 1)).all()
    assert (np.abs(values("market_corr_63")) <= 1 + 1e-6).all()
    assert (values("max_return_21") >= values("min_return_21")).all()


def test_days_are_validated(panel: Panel) -> None:
    empty = np.array([], dtype=np.int64)
    assert compute_features(panel, empty).shape == (0, N_TICKERS, len(feature_specs(True)))
    assert market_beta(panel, empty).shape == (0, N_TICKERS)
    for bad in (np.array([5, 3]), np.array([-1, 3]), np.array([N_DAYS]), np.array([[1]])):
        with pytest.raises(ValueError):
            compute_features(panel, bad)
