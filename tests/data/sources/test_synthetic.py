"""The synthetic market: determinism, the prefix property, shapes, persistence, planted alpha."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy.stats import rankdata

from crowdquant.data.eras import era_day_positions
from crowdquant.data.panel import Panel, equal_weight_market
from crowdquant.data.sources.synthetic import SyntheticConfig, SyntheticMarket

SMALL = SyntheticConfig(n_stocks=60, n_weeks=40, seed=7)


def assert_panels_equal(left: Panel, right: Panel) -> None:
    pd.testing.assert_frame_equal(left.close, right.close, check_exact=True)
    assert left.volume is not None and right.volume is not None
    pd.testing.assert_frame_equal(left.volume, right.volume, check_exact=True)
    pd.testing.assert_series_equal(left.market, right.market, check_exact=True)
    pd.testing.assert_series_equal(left.sector, right.sector)
    assert left.name == right.name


def zscore(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sub(frame.mean(axis=1), axis=0).div(frame.std(axis=1, ddof=0), axis=0)


def log_close(panel: Panel) -> pd.DataFrame:
    return pd.DataFrame(np.log(panel.close.to_numpy()), panel.dates, panel.close.columns)


def next_week_log_return(panel: Panel, eras: pd.Index) -> pd.DataFrame:
    logs = log_close(panel)
    return (logs.shift(-5) - logs).loc[eras]


def rank_ic_tstat(signal: pd.DataFrame, target: pd.DataFrame) -> tuple[float, float]:
    """Mean per-era Spearman correlation and its t-statistic across eras."""
    ranks_s = rankdata(signal.to_numpy(), axis=1)
    ranks_t = rankdata(target.to_numpy(), axis=1)
    ics = np.array([np.corrcoef(s, t)[0, 1] for s, t in zip(ranks_s, ranks_t, strict=True)])
    return float(ics.mean()), float(ics.mean() / ics.std(ddof=1) * np.sqrt(len(ics)))


def mean_rank_corr_between_rows(frame: pd.DataFrame) -> float:
    ranks = rankdata(frame.to_numpy(), axis=1)
    return float(np.mean([np.corrcoef(a, b)[0, 1] for a, b in itertools.pairwise(ranks)]))


@pytest.fixture(scope="module")
def small() -> Panel:
    return SyntheticMarket(SMALL).panel()


@pytest.fixture(scope="module")
def medium() -> SyntheticMarket:
    market = SyntheticMarket(SyntheticConfig(n_stocks=300, n_weeks=200, seed=3))
    market.panel()
    return market


# ---- shapes and calendar ----------------------------------------------------------------


def test_shapes_tickers_and_name(small: Panel) -> None:
    assert small.close.shape == (40 * 5, 60)
    assert small.volume is not None and small.volume.shape == small.close.shape
    assert small.tickers == [f"S{k:04d}" for k in range(1, 61)]
    assert small.name == "synthetic"
    assert all(dtype == np.float64 for dtype in small.close.dtypes)


def test_dates_are_business_days_and_eras_are_fridays(small: Panel) -> None:
    dates = small.dates
    assert dates[0] == pd.Timestamp(SMALL.start)
    assert dates.equals(pd.bdate_range(SMALL.start, periods=200))
    assert (dates.day_of_week < 5).all()
    eras = era_day_positions(dates)
    np.testing.assert_array_equal(eras, np.arange(4, 200, 5))
    assert (dates[eras].day_of_week == 4).all()


def test_prices_and_volumes_positive_and_finite(small: Panel) -> None:
    assert small.volume is not None
    for frame in (small.close, small.volume):
        values = frame.to_numpy()
        assert np.isfinite(values).all()
        assert (values > 0).all()


def test_market_is_equal_weighted_index(small: Panel) -> None:
    assert small.market.iloc[0] == 1.0
    np.testing.assert_allclose(small.market, equal_weight_market(small.close), rtol=1e-10)


def test_every_ticker_has_a_sector_and_sizes_are_uneven() -> None:
    panel = SyntheticMarket(SyntheticConfig(n_stocks=500, n_weeks=1)).panel()
    assert panel.sector.index.equals(panel.close.columns)
    assert panel.sector.str.fullmatch(r"sector_\d\d").all()
    counts = panel.sector.value_counts()
    assert sorted(counts.index) == [f"sector_{k:02d}" for k in range(1, 12)]
    assert counts.max() >= 2 * counts.min()


# ---- determinism and the prefix property ------------------------------------------------


def test_same_seed_same_panel(small: Panel) -> None:
    assert_panels_equal(SyntheticMarket(SMALL).panel(), small)


def test_different_seed_different_panel(small: Panel) -> None:
    other = SyntheticMarket(SMALL.model_copy(update={"seed": 8})).panel()
    assert not np.array_equal(other.close.to_numpy(), small.close.to_numpy())
    assert not other.sector.equals(small.sector)


def test_history_does_not_depend_on_configured_length(small: Panel) -> None:
    longer = SyntheticMarket(SMALL.model_copy(update={"n_weeks": 55}))
    assert_panels_equal(longer.panel(40), small)


def test_prefix_property_in_steps_and_at_once(small: Panel) -> None:
    stepped = SyntheticMarket(SMALL)
    first = stepped.panel(13)
    second = stepped.panel(40)
    assert_panels_equal(second, small)
    assert_panels_equal(second.until(first.dates[-1]), first)
    assert_panels_equal(stepped.panel(13), first)  # served from the cache, unchanged


def test_extending_past_configured_weeks_keeps_history(small: Panel) -> None:
    market = SyntheticMarket(SMALL)
    for weeks in (41, 42, 90):  # a live feed, week by week, then a jump
        extended = market.panel(weeks)
        assert len(extended.dates) == 5 * weeks
        assert_panels_equal(extended.until(small.dates[-1]), small)
    alpha = market.alpha(90)
    pd.testing.assert_frame_equal(alpha.iloc[:40], SyntheticMarket(SMALL).alpha(), check_exact=True)


# ---- persistence ------------------------------------------------------------------------


def test_log_volume_ranking_persists_week_to_week(medium: SyntheticMarket) -> None:
    volume = medium.panel().volume
    assert volume is not None
    weekly = volume.apply(np.log).groupby(np.arange(len(volume)) // 5).mean()
    assert mean_rank_corr_between_rows(weekly) > 0.8


def test_volatility_ranking_persists_across_half_years(medium: SyntheticMarket) -> None:
    returns = log_close(medium.panel()).diff().iloc[1:]
    residual = returns.sub(returns.mean(axis=1), axis=0)
    half_year_vol = residual.groupby(np.arange(len(residual)) // 130).std()  # no overlap
    assert mean_rank_corr_between_rows(half_year_vol) > 0.8


# ---- planted alpha ----------------------------------------------------------------------


def test_alpha_is_the_documented_function_of_prices(medium: SyntheticMarket) -> None:
    panel, alpha = medium.panel(), medium.alpha()
    eras = panel.dates[era_day_positions(panel.dates)]
    assert alpha.index.equals(eras) and alpha.columns.equals(panel.close.columns)
    logs = log_close(panel)
    momentum = (logs.shift(21) - logs.shift(126)).loc[eras]
    reversal = (logs - logs.shift(5)).loc[eras]
    expected = medium.config.alpha_strength * zscore(zscore(momentum) - zscore(reversal))
    warm_up = eras < panel.dates[126]
    assert warm_up.sum() == 25
    assert (alpha.loc[warm_up] == 0).all().all()
    np.testing.assert_allclose(alpha.loc[~warm_up], expected.loc[~warm_up], rtol=1e-9, atol=1e-15)


def test_alpha_predicts_next_week_returns() -> None:
    market = SyntheticMarket(SyntheticConfig(n_stocks=300, n_weeks=200, alpha_strength=1e-3))
    panel, alpha = market.panel(), market.alpha()
    live = alpha.iloc[:-1].loc[alpha.iloc[:-1].abs().sum(axis=1) > 0]
    assert len(live) == 174
    ic, tstat = rank_ic_tstat(live, next_week_log_return(panel, live.index))
    assert 0.03 < ic < 0.2
    assert tstat > 3


def test_default_strength_is_weak_but_positive(medium: SyntheticMarket) -> None:
    panel, alpha = medium.panel(), medium.alpha()
    live = alpha.iloc[25:-1]
    ic, _ = rank_ic_tstat(live, next_week_log_return(panel, live.index))
    assert 0.0 < ic < 0.08


def test_zero_strength_plants_nothing() -> None:
    market = SyntheticMarket(SyntheticConfig(n_stocks=300, n_weeks=200, alpha_strength=0.0))
    panel, alpha = market.panel(), market.alpha()
    assert (alpha == 0).all().all()
    logs = log_close(panel)
    eras = alpha.index[25:-1]
    signal = zscore((logs.shift(21) - logs.shift(126)).loc[eras]) - zscore(
        (logs - logs.shift(5)).loc[eras]
    )
    ic, tstat = rank_ic_tstat(signal, next_week_log_return(panel, eras))
    assert abs(ic) < 0.02
    assert abs(tstat) < 3


# ---- validation -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"n_stocks": 0}, "n_stocks"),
        ({"n_weeks": 0}, "n_weeks"),
        ({"n_sectors": 0}, "n_sectors"),
        ({"n_stocks": 5, "n_sectors": 11}, "must not exceed n_stocks"),
        ({"seed": -1}, "seed"),
        ({"start": dt.date(2000, 1, 4)}, "start must be a Monday"),
        ({"alpha_strength": -1e-4}, "alpha_strength"),
        ({"alpha_strength": float("nan")}, "alpha_strength"),
        ({"slow_persistence": (0.99, 1.0)}, "slow_persistence"),
        ({"slow_persistence": ()}, "slow_persistence"),
        ({"fast_persistence": (0.0,)}, "fast_persistence"),
        ({"vol_regime_persistence": 1.5}, "vol_regime_persistence"),
        ({"idio_vol": 0.0}, "idio_vol"),
        ({"market_vol": -0.01}, "market_vol"),
        ({"n_stock": 10}, "n_stock"),
    ],
)
def test_config_rejects_bad_values(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SyntheticConfig(**overrides)


def test_config_is_frozen() -> None:
    with pytest.raises(ValidationError, match="frozen"):
        SMALL.n_stocks = 3  # type: ignore[misc]


@pytest.mark.parametrize("weeks", [0, -1, 2.5, True])
def test_panel_rejects_bad_week_counts(weeks: Any) -> None:
    with pytest.raises(ValueError, match="n_weeks must be a positive integer"):
        SyntheticMarket(SMALL).panel(weeks)


def test_config_round_trips_through_json() -> None:
    config = SyntheticConfig(n_stocks=20, seed=5, fast_persistence=(0.6,))
    assert SyntheticConfig.model_validate(config.model_dump(mode="json")) == config
    assert SyntheticConfig.model_validate_json(config.model_dump_json()) == config


def test_returned_frames_do_not_share_the_cache() -> None:
    market = SyntheticMarket(SMALL)
    panel, alpha = market.panel(30), market.alpha(30)
    panel.close.iloc[0, 0] = -1.0
    alpha.iloc[-1, 0] = 99.0
    assert market.panel(30).close.to_numpy()[0, 0] > 0
    assert market.alpha(30).to_numpy()[-1, 0] != 99.0
