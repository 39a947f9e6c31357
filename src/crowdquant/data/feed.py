"""A market that moves: each round a new live era with fresh ids, then its realised targets.

The feed extends a built dataset version without rebuilding its history. It reuses the
version's keyed encoding (names, column order, bins), so live rows look exactly like the
rows participants trained on, and keys every round's ids afresh.

Two markets move: a historical panel replayed era by era as if it were live, and the
synthetic market, which generates new weeks as they are needed. Both answer the same for a
date each time they are asked, so the feed keeps the panels of the last few dates asked:
one day's rounds, their targets and the fund all ask for the same few dates.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import pandas as pd

from crowdquant.data.anonymise import ids_from_prf, mix64, proportion_bins, row_prf, subsample
from crowdquant.data.config import DatasetConfig
from crowdquant.data.encoding import FeatureEncoder
from crowdquant.data.eras import era_day_positions
from crowdquant.data.features import MIN_HISTORY, compute_features, feature_specs, market_beta
from crowdquant.data.keys import OperatorKeys
from crowdquant.data.panel import Panel
from crowdquant.data.pipeline import MAIN_TARGET, eligible_universe
from crowdquant.data.sources.synthetic import DAYS_PER_WEEK, SyntheticMarket
from crowdquant.data.splits import LIVE
from crowdquant.data.targets import Exposures, construct, forward_returns, trailing_exposures


class FeedError(RuntimeError):
    """The market has not (yet) produced what was asked for."""


class MovingMarket(Protocol):
    def panel_through(self, date: pd.Timestamp) -> Panel:
        """Everything known at the close of `date`, the same each time it is asked; raises
        FeedError past the market's end."""
        ...

    def trading_day_after(self, date: pd.Timestamp, offset: int) -> pd.Timestamp:
        """The trading day `offset` days after `date`."""
        ...


@dataclass(frozen=True)
class HistoricalMarket:
    """A recorded panel replayed as if live: only days up to the asked date are visible."""

    panel: Panel

    def panel_through(self, date: pd.Timestamp) -> Panel:
        if date > self.panel.dates[-1]:
            raise FeedError(f"the recorded panel ends on {self.panel.dates[-1].date()}")
        return self.panel.until(date)

    def trading_day_after(self, date: pd.Timestamp, offset: int) -> pd.Timestamp:
        position = _position(self.panel.dates, date) + offset
        if position >= len(self.panel.dates):
            raise FeedError(f"the recorded panel ends before {offset} days after {date.date()}")
        return pd.Timestamp(self.panel.dates.to_numpy()[position])


class SyntheticMovingMarket:
    """The synthetic market, generated week by week as the clock asks for more.

    The panel of the weeks generated last is kept: the dates of one week cut theirs from it
    (callers only read panels)."""

    def __init__(self, market: SyntheticMarket):
        self.market = market
        self.start = pd.Timestamp(market.config.start)
        self._weeks: tuple[int, Panel] | None = None

    def panel_through(self, date: pd.Timestamp) -> Panel:
        business_days = len(pd.bdate_range(self.start, date))
        weeks = -(-business_days // DAYS_PER_WEEK)
        kept = self._weeks
        if kept is None or kept[0] != weeks:
            kept = self._weeks = (weeks, self.market.panel(weeks))
        return kept[1].until(date)

    def trading_day_after(self, date: pd.Timestamp, offset: int) -> pd.Timestamp:
        return pd.Timestamp(date + pd.offsets.BDay(offset))


@dataclass(frozen=True)
class LiveEra:
    round_number: int
    era: str
    date: pd.Timestamp  # operator only
    frame: pd.DataFrame  # published: index id; era, data_type, features (if `has_features`)
    tickers: pd.Series  # operator only: id → ticker
    beta: pd.Series  # operator only: id → market beta at the era's close, for residualising
    exposures: pd.DataFrame  # operator only: id → beta, momentum, volatility at the close
    has_features: bool = True  # False: the operator's view, made without the features


PANELS_KEPT = 4  # today's close, a live era's date, an era day being opened, and one spare
PANEL_BYTES_KEPT = 256 * 2**20
LIVE_ERAS_KEPT = 64  # more than the rounds scoring at once: a daily round scores for a month
ERA_DAYS_KEPT = 2  # the dates of the last live eras made: Friday's serves the weekend's rounds


@dataclass(frozen=True)
class _EraDay:
    """A live era's date as every round publishing it sees it, before its own ids and
    subsample: the panel's tail, the eligible universe, the exposures at the close and,
    once a round publishing it asked, the raw features (arrays read-only: rounds share
    them)."""

    panel: Panel
    include: np.ndarray
    beta: np.ndarray
    momentum: np.ndarray
    volatility: np.ndarray
    features: np.ndarray | None = None


def _read_only(values: np.ndarray) -> np.ndarray:
    values.setflags(write=False)
    return values


class KeptPanels:
    """The market's panels of the last few dates asked, within a bound in panels and bytes.

    A panel is kept under the exact date it was asked for and shared by every caller that
    asks for that date again: callers only read it. A date with no trading day since the
    latest kept date before it (a weekend after a Friday) gets that date's panel: nothing
    new is known at its close. What the market refuses is not kept."""

    def __init__(
        self, market: MovingMarket, panels: int = PANELS_KEPT, nbytes: int = PANEL_BYTES_KEPT
    ) -> None:
        self.market, self.panels, self.nbytes = market, panels, nbytes
        self._kept: OrderedDict[pd.Timestamp, tuple[Panel, int]] = OrderedDict()
        self.kept_bytes = 0
        self._lock = threading.Lock()

    def panel_through(self, date: pd.Timestamp) -> Panel:
        key = pd.Timestamp(date)
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
                return found[0]
            earlier = max((kept for kept in self._kept if kept < key), default=None)
        if earlier is not None and self._no_trading_day(earlier, key):
            with self._lock:
                found = self._kept.get(earlier)
                if found is not None:
                    self._kept.move_to_end(earlier)
                    return found[0]
        panel = self.market.panel_through(key)
        size = _panel_bytes(panel)
        with self._lock:
            if size <= self.nbytes and self.panels > 0 and key not in self._kept:
                self._kept[key] = (panel, size)
                self.kept_bytes += size
                while len(self._kept) > self.panels or self.kept_bytes > self.nbytes:
                    self.kept_bytes -= self._kept.popitem(last=False)[1][1]
        return panel

    def __len__(self) -> int:
        return len(self._kept)

    def _no_trading_day(self, earlier: pd.Timestamp, date: pd.Timestamp) -> bool:
        """Whether the market trades on no day after `earlier` through `date`."""
        try:
            return self.market.trading_day_after(earlier, 1) > date
        except FeedError:  # `earlier` is no trading day, or the market ends there
            return False


def _panel_bytes(panel: Panel) -> int:
    """The panel's bytes, from its columns' dtypes (asking each column of a wide frame for
    its memory costs more than making the panel)."""
    frames = [panel.close] + ([] if panel.volume is None else [panel.volume])
    in_frames = sum(_frame_bytes(frame) for frame in frames)
    return in_frames + int(panel.market.memory_usage(index=True))


def _frame_bytes(frame: pd.DataFrame) -> int:
    row = sum(getattr(dtype, "itemsize", 8) for dtype in frame.dtypes)
    return len(frame) * int(row) + int(frame.index.memory_usage())


class MarketFeed:
    def __init__(
        self,
        market: MovingMarket,
        keys: OperatorKeys,
        config: DatasetConfig,
        has_volume: bool,
        *,
        panels_kept: int = PANELS_KEPT,
        live_eras_kept: int = LIVE_ERAS_KEPT,
    ):
        self.market, self.keys, self.config = market, keys, config
        self.encoder = FeatureEncoder(keys, feature_specs(has_volume), config.anonymisation)
        self.panels = KeptPanels(market, panels_kept)
        self.live_eras_kept = live_eras_kept
        self._live: OrderedDict[tuple[int, str, pd.Timestamp], LiveEra] = OrderedDict()
        self._live_lock = threading.Lock()
        self._sectors: tuple[Panel, np.ndarray] | None = None  # the last panel's sector codes
        self._days: OrderedDict[pd.Timestamp, _EraDay] = OrderedDict()  # see `_era_day`

    def panel_through(self, date: pd.Timestamp) -> Panel:
        """The market's panel through `date` (operator only), kept for the next asks: read
        it, never change it."""
        return self.panels.panel_through(date)

    def next_era_date(self, after: pd.Timestamp, known_through: pd.Timestamp) -> pd.Timestamp:
        """The first era day after `after`, once the market has closed it by `known_through`."""
        panel = self.panel_through(known_through)
        days = panel.dates[era_day_positions(panel.dates)]
        later = days[days > after]
        if len(later) == 0:
            raise FeedError(f"no era has closed after {after.date()} by {known_through.date()}")
        return pd.Timestamp(later[0])

    def live_era(
        self, round_number: int, era: str, date: pd.Timestamp, *, features: bool = True
    ) -> LiveEra:
        """The era closing on `date` as round `round_number`'s live rows, with fresh ids;
        without `features`, the operator's view alone (the same ids, tickers and exposures,
        no feature columns): what scoring and the fund need, for a fraction of the work.

        The last `live_eras_kept` asked are kept, so that the rounds scoring reuse the eras
        published when they opened: read them, never change them."""
        key = (round_number, era, pd.Timestamp(date))
        with self._live_lock:
            found = self._live.get(key)
            if found is not None and (found.has_features or not features):
                self._live.move_to_end(key)
                return found
        live = self._make_live_era(*key, features=features)
        with self._live_lock:
            if self.live_eras_kept > 0:
                self._live[key] = live
                self._live.move_to_end(key)
                while len(self._live) > self.live_eras_kept:
                    self._live.popitem(last=False)
        return live

    @property
    def live_eras_held(self) -> int:
        return len(self._live)

    def _era_day(self, date: pd.Timestamp, features: bool) -> _EraDay:
        """What every round whose live era closes on `date` shares (a weekend's rounds
        publish Friday's era), worked out once for the last few dates asked; its features
        once asked for."""
        with self._live_lock:
            found = self._days.get(date)
            if found is not None:
                self._days.move_to_end(date)
        made = self._new_era_day(date) if found is None else found
        if features and made.features is None:
            last = np.array([len(made.panel.dates) - 1])
            made = replace(made, features=_read_only(compute_features(made.panel, last)))
        if made is found:
            return made
        with self._live_lock:
            self._days[date] = made
            while len(self._days) > ERA_DAYS_KEPT:
                self._days.popitem(last=False)
        return made

    def _new_era_day(self, date: pd.Timestamp) -> _EraDay:
        panel = self.panel_through(date)
        if panel.dates[-1] != date or date.day_of_week > 4:
            raise FeedError(f"{date.date()} is not a trading day of the market")
        panel = panel.tail(MIN_HISTORY + 5)  # all a live era's features need
        day = np.array([len(panel.dates) - 1])
        close = panel.close.to_numpy(np.float64)
        exposures = trailing_exposures(close, day, market_beta(panel, day), panel.sector_codes())
        return _EraDay(
            panel=panel,
            include=_read_only(eligible_universe(panel, day)),
            beta=_read_only(exposures.beta),
            momentum=_read_only(exposures.momentum),
            volatility=_read_only(exposures.volatility),
        )

    def _make_live_era(
        self, round_number: int, era: str, date: pd.Timestamp, features: bool
    ) -> LiveEra:
        shared = self._era_day(date, features)
        panel, include = shared.panel, shared.include
        scope = f"round:{round_number}"
        prf = row_prf(self.keys.derive(f"ids:{scope}"), panel.tickers, [str(date.date())], include)
        if self.config.anonymisation.subsample is not None:
            include = subsample(
                include, prf[..., 1], self.keys, scope, self.config.anonymisation.subsample
            )
        cells = np.nonzero(include)
        ids = pd.Index(ids_from_prf(prf[..., 0][cells]), name="id")
        if features:
            assert shared.features is not None  # `_era_day` made them
            bins = self.encoder.encode(shared.features, include, prf[..., 1])
            frame = pd.DataFrame(bins[cells], columns=self.encoder.names, index=ids)
        else:
            frame = pd.DataFrame(index=ids)
        frame.insert(0, "data_type", LIVE)
        frame.insert(0, "era", era)
        order = np.argsort(ids.to_numpy())
        tickers = np.array(panel.tickers, dtype=object)[cells[1]]
        beta = shared.beta[cells]
        exposures = pd.DataFrame(
            {"beta": beta, "momentum": shared.momentum[cells]}, index=ids
        ).assign(volatility=shared.volatility[cells])
        return LiveEra(
            round_number=round_number,
            era=era,
            date=date,
            frame=frame.iloc[order],
            tickers=pd.Series(tickers, index=ids).iloc[order],
            beta=pd.Series(beta, index=ids).iloc[order],
            exposures=exposures.iloc[order],
            has_features=features,
        )

    def days_known(self, live: LiveEra, as_of: pd.Timestamp) -> int:
        """How many days of the live era's horizon have closed by `as_of` (0..horizon)."""
        cfg = self.config.targets
        known, unknown = 0, cfg.main_horizon + 1  # closed by then: every day up to `known`
        while unknown - known > 1:  # later days close later, and run past the market first
            days = (known + unknown) // 2
            if self._closed_by(live.date, cfg.lag + days, as_of):
                known = days
            else:
                unknown = days
        return known

    def _closed_by(self, date: pd.Timestamp, offset: int, as_of: pd.Timestamp) -> bool:
        try:
            return self.market.trading_day_after(date, offset) <= as_of
        except FeedError:
            return False

    def targets(self, live: LiveEra, days: int) -> pd.DataFrame:
        """The live era's targets over the first `days` trading days of the horizon.

        The main target's construction; days = its horizon gives the final target. Raises
        FeedError until the market has traded that far.
        """
        cfg = self.config.targets
        if not 1 <= days <= cfg.main_horizon:
            raise ValueError(f"days must be within 1..{cfg.main_horizon}, got {days}")
        end = self.market.trading_day_after(live.date, cfg.lag + days)
        panel = self.panel_through(end)
        columns = panel.close.columns.get_indexer(pd.Index(live.tickers))
        fwd = forward_returns(
            _window_ends(panel, _position(panel.dates, live.date), cfg.lag, days, columns),
            np.array([0]),
            0,
            1,
        )
        sectors = self._sector_codes(panel)[columns]
        include = np.isfinite(fwd)
        per_era = {str(c): live.exposures[c].to_numpy(np.float64)[None, :] for c in live.exposures}
        exposures = Exposures(sectors=sectors, **per_era)
        resid = construct(cfg.main_construction, fwd, exposures, include)
        key = int.from_bytes(
            self.keys.derive(f"target-tiebreak:round:{live.round_number}")[:8], "little"
        )
        tiebreak = mix64(np.arange(len(live.tickers), dtype=np.uint64)[None, :], key)
        binned = proportion_bins(resid, include, tiebreak, cfg.proportions)
        return pd.DataFrame(
            {MAIN_TARGET: binned[0], "residual_return": resid[0]}, index=live.frame.index
        )

    def _sector_codes(self, panel: Panel) -> np.ndarray:
        """`panel.sector_codes()`, worked out once for the panel the rounds scoring together
        share (panels are never changed)."""
        kept = self._sectors
        if kept is not None and kept[0] is panel:
            return kept[1]
        codes = panel.sector_codes()
        self._sectors = (panel, codes)
        return codes


def _window_ends(panel: Panel, start: int, lag: int, days: int, columns: np.ndarray) -> np.ndarray:
    """The closes a forward return reads, `lag` and `lag + days` rows after row `start`,
    of the panel's `columns` (-1: a ticker it lacks, NaN), as two rows; a single NaN row when
    the panel ends before the window does (the return is then unknown, as in
    `forward_returns`)."""
    first, last = start + lag, start + lag + days
    if last >= len(panel.dates):
        return np.full((1, len(columns)), np.nan)
    rows = panel.close.iloc[[first, last]].to_numpy(np.float64)[:, columns]
    rows[:, columns < 0] = np.nan
    return rows


def _position(dates: pd.DatetimeIndex, date: pd.Timestamp) -> int:
    position = int(dates.get_indexer(pd.DatetimeIndex([date]))[0])
    if position < 0:
        raise FeedError(f"{date.date()} is not a trading day of the market")
    return position
