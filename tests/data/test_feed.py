"""The moving market: live eras with fresh ids, then their targets day by day."""

from __future__ import annotations

from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
import pytest

from crowdquant.data import feed
from crowdquant.data.config import (
    AnonymisationConfig,
    DatasetConfig,
    ExampleModelConfig,
    TargetConfig,
)
from crowdquant.data.feed import (
    FeedError,
    HistoricalMarket,
    KeptPanels,
    MarketFeed,
    MovingMarket,
    SyntheticMovingMarket,
)
from crowdquant.data.panel import Panel
from crowdquant.data.sources import BundledSource, SyntheticSource
from crowdquant.data.sources.synthetic import SyntheticMarket
from crowdquant.data.targets import forward_returns

from .conftest import KEYS, SMALL_MARKET, Built, build

NO_SUBSAMPLE = DatasetConfig(
    anonymisation=AnonymisationConfig(subsample=None), example_model=ExampleModelConfig(max_iter=5)
)


@pytest.fixture(scope="module")
def synthetic_feed(synthetic_build: Built) -> MarketFeed:
    market = SyntheticMovingMarket(SyntheticMarket(SMALL_MARKET))
    return MarketFeed(market, KEYS, synthetic_build.version.config(), has_volume=True)


def _last_era_date(built: Built) -> pd.Timestamp:
    return pd.Timestamp(built.version.eras()["date"].iloc[-1])


def test_next_live_era_has_fresh_ids_and_the_published_columns(
    synthetic_build: Built, synthetic_feed: MarketFeed
) -> None:
    last = _last_era_date(synthetic_build)
    date = synthetic_feed.next_era_date(after=last, known_through=last + pd.Timedelta(days=8))
    assert date == last + pd.Timedelta(days=7)
    first = synthetic_feed.live_era(1, "0999", date)
    again = synthetic_feed.live_era(2, "0999", date)
    published = synthetic_build.version.frame("live")
    assert list(first.frame.columns) == list(published.columns)
    assert (first.frame.dtypes.iloc[2:] == np.int8).all()
    history_ids = set(synthetic_build.version.id_map()["id"])
    assert history_ids.isdisjoint(first.frame.index)
    assert set(first.frame.index).isdisjoint(again.frame.index)  # a new round, new ids
    assert first.frame.index.str.fullmatch(r"n[0-9a-f]{15}").all()


def test_an_era_not_yet_closed_is_refused(
    synthetic_build: Built, synthetic_feed: MarketFeed
) -> None:
    last = _last_era_date(synthetic_build)
    with pytest.raises(FeedError, match="no era has closed"):
        synthetic_feed.next_era_date(after=last, known_through=last + pd.Timedelta(days=3))


def test_daily_targets_converge_to_the_final_one(
    synthetic_build: Built, synthetic_feed: MarketFeed
) -> None:
    date = _last_era_date(synthetic_build) + pd.Timedelta(days=7)
    live = synthetic_feed.live_era(1, "0999", date)
    assert synthetic_feed.days_known(live, date) == 0
    assert synthetic_feed.days_known(live, date + pd.Timedelta(days=7)) == 3  # lag 2, then 3 days
    final = synthetic_feed.targets(live, 20)
    assert final.index.equals(live.frame.index)
    counts = final["target"].value_counts(normalize=True).sort_index()
    assert np.allclose(counts.to_numpy(), [0.05, 0.2, 0.5, 0.2, 0.05], atol=0.02)
    correlations = [
        final["residual_return"].corr(
            synthetic_feed.targets(live, d)["residual_return"], method="spearman"
        )
        for d in (1, 5, 10, 19)
    ]
    assert correlations == sorted(correlations) and correlations[-1] > 0.9
    with pytest.raises(ValueError, match=r"1\.\.20"):
        synthetic_feed.targets(live, 21)


def test_live_rows_encode_like_the_history(tmp_path: Path) -> None:
    """The feed's rows for the build's own live era match the build's, ticker by ticker."""
    built = build(tmp_path, SyntheticSource(market=SMALL_MARKET), config=NO_SUBSAMPLE)
    date = _last_era_date(built)
    feed = MarketFeed(
        SyntheticMovingMarket(SyntheticMarket(SMALL_MARKET)), KEYS, NO_SUBSAMPLE, True
    )
    live = feed.live_era(5, "0150", date)
    id_map = built.version.id_map().set_index("id")
    ours = live.frame.set_index(live.tickers.reindex(live.frame.index).to_numpy()).iloc[:, 2:]
    theirs = built.version.frame("live")
    theirs = theirs.set_index(id_map.loc[theirs.index, "ticker"].to_numpy()).iloc[:, 2:]
    ours = ours.loc[theirs.index]
    same = (ours.to_numpy() == theirs.to_numpy()).mean()
    assert same > 0.97  # only keyed tie-breaks between equal raw values may differ
    assert np.abs(ours.to_numpy().astype(int) - theirs.to_numpy()).max() <= 1


def test_a_recorded_panel_replays_as_if_live(tmp_path: Path) -> None:
    built = build(tmp_path, BundledSource(), until=pd.Timestamp("2021-06-30"))
    feed = MarketFeed(HistoricalMarket(built.panel), KEYS, built.version.config(), has_volume=False)
    last = _last_era_date(built)
    assert last <= pd.Timestamp("2021-06-30")
    date = feed.next_era_date(after=last, known_through=pd.Timestamp("2021-07-12"))
    live = feed.live_era(1, "2000", date)
    assert 15 <= len(live.frame) <= 20
    assert feed.targets(live, 20)["target"].notna().all()
    end = pd.Timestamp("2022-12-28")
    late = feed.live_era(
        2, "2001", feed.next_era_date(after=end - pd.Timedelta(days=10), known_through=end)
    )
    with pytest.raises(FeedError, match="ends before"):
        feed.targets(late, 20)


def test_live_targets_follow_the_operators_main_target(tmp_path: Path) -> None:
    """With another main target, the feed scores rounds on that target's construction: for
    an era of the history, the same values as the build's."""
    targets = TargetConfig(main="target_victor_20", main_construction="factor_neutral")
    config = NO_SUBSAMPLE.model_copy(update={"targets": targets})
    built = build(tmp_path, SyntheticSource(market=SMALL_MARKET), config=config)
    eras = built.version.eras()
    era = eras[eras["data_type"] == "validation"].iloc[-1]
    feed = MarketFeed(SyntheticMovingMarket(SyntheticMarket(SMALL_MARKET)), KEYS, config, True)
    live = feed.live_era(3, str(era["era"]), pd.Timestamp(era["date"]))
    scored = feed.targets(live, 20).set_index(live.tickers.reindex(live.frame.index).to_numpy())
    id_map = built.version.id_map()
    history = id_map[id_map["era"] == era["era"]].set_index("ticker")
    np.testing.assert_allclose(
        scored["residual_return"].loc[history.index], history["residual_return"], atol=1e-12
    )
    validation = built.version.frame("validation")
    assert validation["target"].equals(validation["target_victor_20"])


class CountingMarket:
    """A market that counts the panels it is asked for."""

    def __init__(self, market: MovingMarket) -> None:
        self.market, self.asked = market, 0

    def panel_through(self, date: pd.Timestamp) -> Panel:
        self.asked += 1
        return self.market.panel_through(date)

    def trading_day_after(self, date: pd.Timestamp, offset: int) -> pd.Timestamp:
        return self.market.trading_day_after(date, offset)


def test_rounds_publishing_one_date_compute_its_features_once_and_get_a_fresh_feeds_era(
    synthetic_build: Built,
) -> None:
    market = SyntheticMovingMarket(SyntheticMarket(SMALL_MARKET))
    config = synthetic_build.version.config()
    shared = MarketFeed(market, KEYS, config, has_volume=True)
    friday = _last_era_date(synthetic_build) + pd.Timedelta(days=7)
    with mock.patch.object(feed, "compute_features", wraps=feed.compute_features) as computed:
        first = shared.live_era(1, "0999", friday)
        second = shared.live_era(2, "0999", friday)  # Saturday's round: Friday's era again
    assert computed.call_count == 1
    alone = MarketFeed(market, KEYS, config, has_volume=True).live_era(2, "0999", friday)
    pd.testing.assert_frame_equal(second.frame, alone.frame)
    pd.testing.assert_frame_equal(second.exposures, alone.exposures)
    pd.testing.assert_series_equal(second.tickers, alone.tickers)
    pd.testing.assert_series_equal(second.beta, alone.beta)
    assert first.frame.index.intersection(second.frame.index).empty


def _same_panel(one: Panel, other: Panel) -> bool:
    return one.close.equals(other.close) and one.market.equals(other.market)


@pytest.fixture(scope="module")
def synthetic_market() -> SyntheticMovingMarket:
    return SyntheticMovingMarket(SyntheticMarket(SMALL_MARKET))


def test_kept_panels_answer_each_date_as_the_market_does(
    synthetic_market: SyntheticMovingMarket,
) -> None:
    market = CountingMarket(synthetic_market)
    kept = KeptPanels(market, panels=2)
    monday, tuesday, wednesday = pd.bdate_range("2015-03-02", periods=3)
    first = kept.panel_through(monday)
    assert kept.panel_through(monday) is first and market.asked == 1
    later = kept.panel_through(tuesday)  # new market data: a new day, never the kept panel
    assert later.dates[-1] == tuesday and len(later.dates) == len(first.dates) + 1
    assert kept.panel_through(wednesday).dates[-1] == wednesday and market.asked == 3
    assert len(kept) == 2  # Monday's went first
    assert _same_panel(kept.panel_through(monday), synthetic_market.panel_through(monday))
    assert market.asked == 4
    for day in (monday, tuesday, wednesday):
        assert _same_panel(kept.panel_through(day), synthetic_market.panel_through(day))


def test_a_weekend_gets_fridays_kept_panel_and_monday_a_new_one(
    synthetic_market: SyntheticMovingMarket,
) -> None:
    market = CountingMarket(synthetic_market)
    kept = KeptPanels(market, panels=2)
    friday = pd.Timestamp("2015-03-06")
    saturday, sunday, monday = (friday + pd.Timedelta(days=d) for d in (1, 2, 3))
    known = kept.panel_through(friday)
    for day in (saturday, sunday):
        assert kept.panel_through(day) is known  # nothing traded since Friday's close
        assert _same_panel(known, synthetic_market.panel_through(day))
    assert market.asked == 1 and len(kept) == 1
    assert kept.panel_through(monday).dates[-1] == monday and market.asked == 2
    assert kept.panel_through(sunday) is known  # the latest kept date before it is Friday
    panel = SyntheticMarket(SMALL_MARKET).panel(10)
    last = KeptPanels(HistoricalMarket(panel))
    last.panel_through(panel.dates[-1])
    with pytest.raises(FeedError, match="ends on"):  # past a recorded market's end
        last.panel_through(panel.dates[-1] + pd.Timedelta(days=1))


def test_a_synthetic_market_makes_a_weeks_panel_once_for_its_dates() -> None:
    generated = SyntheticMarket(SMALL_MARKET)
    market = SyntheticMovingMarket(generated)
    fresh = SyntheticMarket(SMALL_MARKET)
    monday, tuesday, wednesday = pd.bdate_range("2015-03-02", periods=3)
    next_monday = monday + pd.Timedelta(days=7)
    with mock.patch.object(generated, "panel", wraps=generated.panel) as made:
        for day in (monday, tuesday, wednesday, monday, next_monday, wednesday):
            expected = SyntheticMovingMarket(fresh).panel_through(day)
            assert _same_panel(market.panel_through(day), expected)
    weeks = made.call_args_list[0].args[0]  # one panel a week, made again when asked again
    assert [c.args for c in made.call_args_list] == [(weeks,), (weeks + 1,), (weeks,)]


def test_a_windows_two_closes_give_the_forward_return_of_the_whole_window() -> None:
    panel = SyntheticMarket(SMALL_MARKET).panel(10)
    tickers = pd.Index([*panel.tickers[5:9], "NOT_LISTED", panel.tickers[0]])
    columns = panel.close.columns.get_indexer(tickers)
    for start, lag, days in ((3, 1, 1), (10, 1, 20), (len(panel.dates) - 6, 1, 5), (40, 2, 30)):
        whole = panel.close.iloc[start:].reindex(columns=tickers.to_numpy())
        expected = forward_returns(whole.to_numpy(np.float64), np.array([0]), lag, days)
        ends = feed._window_ends(panel, start, lag, days, columns)
        found = forward_returns(ends, np.array([0]), 0, 1)
        assert found.tobytes() == expected.tobytes()  # bit for bit, NaN where unknown
        assert np.isnan(found[0, 4]) and np.isfinite(found).sum() in (0, 5)


def test_kept_panels_stay_within_their_bytes_and_never_keep_a_refusal() -> None:
    panel = SyntheticMarket(SMALL_MARKET).panel(10)
    market = CountingMarket(HistoricalMarket(panel))
    probe = KeptPanels(market, panels=10)
    one = probe.panel_through(panel.dates[-1])
    kept = KeptPanels(market, panels=10, nbytes=probe.kept_bytes + 1)
    kept.panel_through(panel.dates[-2])
    kept.panel_through(panel.dates[-1])  # both fit the panel count, not the bytes
    assert len(kept) == 1 and kept.kept_bytes <= kept.nbytes
    assert _same_panel(kept.panel_through(panel.dates[-1]), one)
    asked = market.asked
    for _ in range(2):
        with pytest.raises(FeedError, match="ends on"):
            kept.panel_through(panel.dates[-1] + pd.Timedelta(days=3))
    assert market.asked == asked + 2
    too_small = KeptPanels(market, panels=10, nbytes=100)
    too_small.panel_through(panel.dates[-1])
    assert len(too_small) == 0


def test_kept_panels_give_the_same_live_eras_and_targets(
    synthetic_build: Built, synthetic_market: SyntheticMovingMarket
) -> None:
    """Day by day, as the scheduler asks, a feed keeping panels answers as one keeping none."""
    config = synthetic_build.version.config()
    keeping = MarketFeed(synthetic_market, KEYS, config, has_volume=True)
    fresh = MarketFeed(synthetic_market, KEYS, config, has_volume=True, panels_kept=0)
    start = _last_era_date(synthetic_build) + pd.Timedelta(days=7)
    lives = [(keeping.live_era(n, "0999", start), fresh.live_era(n, "0999", start)) for n in (1, 2)]
    for one, other in lives:
        pd.testing.assert_frame_equal(one.frame, other.frame)
    for days in range(1, 6):
        for one, other in lives:
            pd.testing.assert_frame_equal(keeping.targets(one, days), fresh.targets(other, days))
    assert len(fresh.panels) == 0 and 0 < len(keeping.panels) <= 4


def test_a_feed_keeps_its_last_live_eras_and_makes_again_those_it_let_go(
    synthetic_build: Built, synthetic_market: SyntheticMovingMarket
) -> None:
    config = synthetic_build.version.config()
    feed = MarketFeed(synthetic_market, KEYS, config, has_volume=True, live_eras_kept=2)
    date = _last_era_date(synthetic_build) + pd.Timedelta(days=7)
    first = feed.live_era(1, "0999", date)
    assert feed.live_era(1, "0999", date) is first
    assert feed.live_era(1, "1000", date).frame["era"].eq("1000").all()  # another era's label
    feed.live_era(2, "0999", date)
    assert feed.live_eras_held == 2
    again = feed.live_era(1, "0999", date)  # let go, then made again: the same rows
    assert again is not first
    pd.testing.assert_frame_equal(again.frame, first.frame)
    pd.testing.assert_frame_equal(again.exposures, first.exposures)


def test_the_operators_view_of_a_live_era_is_the_published_one_without_its_features(
    synthetic_build: Built, synthetic_market: SyntheticMovingMarket
) -> None:
    """Scoring and the fund ask only for ids, tickers and exposures: the same as published,
    made without the features; asked for the published era, the feed then makes it whole."""
    config = synthetic_build.version.config()
    date = _last_era_date(synthetic_build) + pd.Timedelta(days=7)
    published = MarketFeed(synthetic_market, KEYS, config, has_volume=True).live_era(
        1, "0999", date
    )
    feed = MarketFeed(synthetic_market, KEYS, config, has_volume=True)
    with mock.patch.object(feed, "encoder", wraps=feed.encoder) as encoder:
        view = feed.live_era(1, "0999", date, features=False)
        assert feed.live_era(1, "0999", date, features=False) is view
        encoder.encode.assert_not_called()
    assert not view.has_features and list(view.frame.columns) == ["era", "data_type"]
    pd.testing.assert_index_equal(view.frame.index, published.frame.index)
    pd.testing.assert_series_equal(view.tickers, published.tickers)
    pd.testing.assert_frame_equal(view.exposures, published.exposures)
    pd.testing.assert_frame_equal(feed.targets(view, 3), feed.targets(published, 3))
    whole = feed.live_era(1, "0999", date)
    assert whole.has_features
    pd.testing.assert_frame_equal(whole.frame, published.frame)
    assert feed.live_era(1, "0999", date, features=False) is whole  # serves both now


def _days_known_one_by_one(feed: MarketFeed, date: pd.Timestamp, as_of: pd.Timestamp) -> int:
    cfg = feed.config.targets
    for days in range(cfg.main_horizon, 0, -1):
        try:
            if feed.market.trading_day_after(date, cfg.lag + days) <= as_of:
                return days
        except FeedError:
            continue
    return 0


def test_days_known_counts_every_closed_day_up_to_the_markets_end() -> None:
    panel = SyntheticMarket(SMALL_MARKET).panel(10)
    feed = MarketFeed(HistoricalMarket(panel), KEYS, NO_SUBSAMPLE, has_volume=True)
    horizon = feed.config.targets.main_horizon
    for era_day in (panel.dates[-30], panel.dates[-12], panel.dates[-2]):
        live = feed.live_era(1, "0001", era_day)
        seen = []
        for as_of in pd.date_range(era_day, periods=40):
            known = feed.days_known(live, as_of)
            assert known == _days_known_one_by_one(feed, era_day, as_of)
            seen.append(known)
        assert seen == sorted(seen) and 0 <= seen[-1] <= horizon
    assert seen[-1] == 0  # two days before the end: not even the lag has passed
