"""Opening rounds with a freshly keyed live era, and reading them (`lifecycle` moves them on).

Opening numbers rounds 1, 2, ... per tournament and publishes the live era first: the
publisher writes the files (atomically), then the round row and its `DatasetFile` rows are
added. A publisher that fails leaves no file, and then no row is added either. If the
caller's transaction fails after publishing, the files stay without a row; they are
harmless, since publishing is deterministic (same round, same era, same bytes) and the retry
that opens the round rewrites them.

Functions work inside the caller's transaction: they flush, never commit.
"""

from __future__ import annotations

import hashlib
import io
import re
import uuid
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Protocol

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session, contains_eager

from crowdquant.clock import Clock
from crowdquant.data.benchmark import BenchmarkModels
from crowdquant.data.eras import era_label
from crowdquant.data.feed import MarketFeed
from crowdquant.data.pipeline import era_grid
from crowdquant.data.release import benchmark_file, published_benchmarks
from crowdquant.data.splits import LIVE
from crowdquant.db.models import DatasetFile, Round, RoundStatus, Tournament
from crowdquant.faults import crash_point
from crowdquant.payouts import (
    PayoutRule,
    PayoutRuleError,
    ScoreConfig,
    ScoringWindow,
    configs_from_data,
    configs_to_data,
    default_rule,
    rule_from_data,
    rule_to_data,
    rule_with,
    score_configs,
)
from crowdquant.scoring import SCORING_VERSION
from crowdquant.storage import FileStorage
from crowdquant.tournament.calendar import (
    RoundTimes,
    next_round,
    round_open_at,
    round_opened_now,
    schedule_for,
)
from crowdquant.tournament.errors import ServiceError
from crowdquant.tournament.rules import ruleset_of
from crowdquant.tournament.rules2017_files import (
    FILENAMES_2017,
    Rules2017Rounds,
    StoredRoundFile,
    delete_all,
    round_filename,
)
from crowdquant.tournament.settings_model import settings_of

LIVE_FILENAME = "live.parquet"
LIVE_BENCHMARK_FILENAME = benchmark_file(LIVE)
MOVING_FILENAMES = (LIVE_FILENAME, LIVE_BENCHMARK_FILENAME, *FILENAMES_2017)
"""A version's files that hold the newest round's data; each round has its own copy."""
_ROUND_FILE = re.compile(
    r"(?:live|live_benchmark_models|numerai_training_data|numerai_tournament_data)_(\d+)\.\w+"
)


def own_filename(round_number: int, filename: str) -> str:
    """The round's own file for a moving name (``live.parquet`` → ``live_<round>.parquet``,
    ``numerai_tournament_data.csv`` → ``numerai_tournament_data_<round>.csv``); any other
    name unchanged."""
    return round_filename(filename, round_number) if filename in MOVING_FILENAMES else filename


def of_round(round_number: int, filename: str) -> bool:
    """Whether a file of the round's version belongs to the round: not a moving file, and
    not another round's own file."""
    if filename in MOVING_FILENAMES:
        return False
    found = _ROUND_FILE.fullmatch(filename)
    return found is None or int(found.group(1)) == round_number


# --- errors (N818 waived: short names read better where raised and caught) -------------------


class RoundError(ServiceError):
    """A refused request about rounds."""

    code = "round_error"


class RoundStateError(RoundError):
    """The round is not in the status the transition starts from."""

    code = "round_state"

    def __init__(
        self, tournament: int, round_number: int, current: RoundStatus, wanted: RoundStatus
    ) -> None:
        self.tournament, self.round_number = tournament, round_number
        self.current, self.wanted = current, wanted
        super().__init__(
            f"round {round_number} of tournament {tournament} is {current}:"
            f" it cannot become {wanted}"
        )


class NoRoundDue(RoundError):  # noqa: N818
    code = "no_round_due"


class RoundScheduleError(RoundError):
    code = "round_schedule"


class PublishFailed(RoundError):  # noqa: N818
    code = "publish_failed"


class RoundNotFound(RoundError, LookupError):  # noqa: N818
    code = "round_not_found"


# --- publishing a live era -------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedLive:
    """What a publisher stored for one round.

    `storage_key` holds the round's live file; `current_name`, when set, the version's name
    (`live.parquet`) whose row points at it once the round opens. `market_date` is
    operator-only: the trading day the live era shows. `files`: the round's other published
    files (a 2017 round's CSV files), each to record under its own name.
    """

    live_era: str
    storage_key: str
    size: int
    sha256: str
    current_name: str | None = None
    market_date: date | None = None
    rows: int | None = None
    files: tuple[StoredRoundFile, ...] = ()


class LivePublisher(Protocol):
    def publish(self, tournament: Tournament, round_number: int, era_date: date) -> PublishedLive:
        """Store round `round_number`'s live rows for the era of `era_date`.

        Either every file is stored completely or, when it raises, none is. Publishing the
        same round again must be safe (it replaces the files).
        """
        ...


def same_day(day: date) -> date:
    return day


def shift_weeks(weeks: int) -> Callable[[date], date]:
    """A `market_date` mapping that replays a market `weeks` weeks behind the calendar (keeps
    weekdays: a Monday round still shows a Monday)."""
    offset = timedelta(weeks=weeks)

    def market_date(day: date) -> date:
        return day - offset

    return market_date


class FeedPublisher:
    """Publishes live eras from a `MarketFeed` into storage.

    Files: ``<prefix><dataset_version>/live_<round>.parquet``, under a key of its own that
    only the round's committed rows point at (the version's ``live.parquet`` row among them,
    once the round opens): nothing a committed row names is ever overwritten, so a crash
    before the commit leaves at most a file the retried opening writes again. Index ``id``,
    columns ``era``, ``data_type`` and the version's published features, like the version's
    own live file.

    `market_date` maps a round's calendar era date to the market's (identity by default;
    `shift_weeks` replays a market from the past). The live era is the market's last trading
    day on or before that date, and is labelled with the number of its week counted as the
    dataset build counts eras (from the first week with a full feature history): the live
    rounds continue the version's era numbers, and the daily rounds of one week share their
    week's label.

    With `files_2017` (a `Rules2017Rounds` over the tournament's dataset version), the rounds of a
    tournament whose ruleset says so (`publishes_2017_files`) also publish their 2017 CSV
    files (`rules2017_files`); with `benchmarks` (the version's benchmark models), each round
    also publishes their predictions of its live era (``live_benchmark_models_<round>.parquet``,
    and ``live_benchmark_models.parquet`` once it opens). All of a round's files are stored,
    or none.
    """

    def __init__(
        self,
        feed: MarketFeed,
        storage: FileStorage,
        *,
        market_date: Callable[[date], date] = same_day,
        prefix: str = "",
        files_2017: Rules2017Rounds | None = None,
        benchmarks: BenchmarkModels | None = None,
    ) -> None:
        if prefix and not prefix.endswith("/"):
            raise ValueError("a storage prefix ends with '/'")
        self.feed, self.storage = feed, storage
        self.market_date, self.prefix = market_date, prefix
        self.files_2017, self.benchmarks = files_2017, benchmarks

    def publish(self, tournament: Tournament, round_number: int, era_date: date) -> PublishedLive:
        wanted = pd.Timestamp(self.market_date(era_date))
        panel = self.feed.panel_through(wanted)
        trading_day = pd.Timestamp(panel.dates[-1])
        era_days = pd.DatetimeIndex(era_grid(panel).dates)
        label = era_label(int((era_days < trading_day).sum()) + 1)
        live = self.feed.live_era(round_number, label, trading_day)

        buffer = io.BytesIO()
        live.frame.to_parquet(buffer, engine="pyarrow", compression="zstd", index=True)
        content = buffer.getvalue()
        folder = f"{self.prefix}{tournament.dataset_version}/"
        key = f"{folder}{round_filename(LIVE_FILENAME, round_number)}"
        files: list[StoredRoundFile] = []
        written: list[str] = []
        if self.files_2017 is not None and ruleset_of(tournament).publishes_2017_files:
            files, written = self.files_2017.store(
                self.storage, folder, tournament.dataset_version, round_number, live.frame
            )
        try:
            if self.benchmarks is not None:
                files.extend(self._store_benchmarks(tournament, folder, round_number, live.frame))
                written.append(files[-1].storage_key)
            stored = self.storage.write(key, content)
        except BaseException:
            delete_all(self.storage, written)
            raise
        return PublishedLive(
            live_era=label,
            storage_key=key,
            size=stored.size,
            sha256=stored.sha256 or hashlib.sha256(content).hexdigest(),
            current_name=LIVE_FILENAME,
            market_date=trading_day.date(),
            rows=len(live.frame),
            files=tuple(files),
        )

    def _store_benchmarks(
        self, tournament: Tournament, folder: str, round_number: int, frame: pd.DataFrame
    ) -> list[StoredRoundFile]:
        assert self.benchmarks is not None
        predictions = published_benchmarks(
            self.benchmarks.predict(frame), tournament.dataset_version
        )
        buffer = io.BytesIO()
        predictions.to_parquet(buffer, engine="pyarrow", compression="zstd", index=True)
        own = round_filename(LIVE_BENCHMARK_FILENAME, round_number)
        stored = self.storage.write(f"{folder}{own}", buffer.getvalue())
        sha256 = stored.sha256 or hashlib.sha256(buffer.getvalue()).hexdigest()
        return [
            StoredRoundFile(name, f"{folder}{own}", stored.size, sha256)
            for name in (own, LIVE_BENCHMARK_FILENAME)
        ]


# --- opening ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class EarlyPublication:
    """A round's live era published before the transaction that opens it (`open_round`):
    for round `number` of dataset version `version`, on the timetable `times`."""

    number: int
    version: str
    times: RoundTimes
    live: PublishedLive

    def serves(self, number: int, tournament: Tournament, times: RoundTimes) -> bool:
        return (self.number, self.version, self.times) == (
            number,
            tournament.dataset_version,
            times,
        )


def open_round(
    session: Session,
    clock: Clock,
    tournament: Tournament,
    publisher: LivePublisher,
    *,
    times: RoundTimes | None = None,
    early: EarlyPublication | None = None,
) -> Round:
    """Open the tournament's next round and publish its live era.

    `times` defaults to the round of the tournament's calendar whose window contains now
    (`NoRoundDue` if none does); explicit times must also contain now. Idempotent per window:
    if the round opening at that time exists already, it is returned unchanged. Raises
    `RoundScheduleError` if the window starts before the newest round closes (or, once it is
    closed, early by hand or not, before it opened), and
    `PublishFailed` (nothing stored, no row) if publishing fails. The live era is `early`'s
    (`publish_early`) if that was published for the very round this opens, else published
    here.
    """
    now = clock.now()
    if times is None:
        schedule = schedule_for(tournament.cadence, tournament.settings)
        times = round_open_at(schedule, now)
        if times is None:
            upcoming = next_round(schedule, now).open_time
            raise NoRoundDue(
                f"no round of tournament {tournament.number} is open for submissions at"
                f" {now:%Y-%m-%d %H:%M} UTC; the next opens at {upcoming:%Y-%m-%d %H:%M} UTC"
            )
    elif not times.is_open_at(now):
        raise RoundScheduleError(
            f"a round open from {times.open_time} to {times.close_time} cannot open at {now}"
        )

    latest = current_round(session, tournament)
    if latest is not None and latest.open_time == times.open_time:
        return latest
    number = _next_number(session, tournament, latest, times)
    if early is not None and early.serves(number, tournament, times):
        published = early.live
    else:
        published = _publish(tournament, publisher, number, times)
    crash_point("open:after-files")

    round_ = Round(
        tournament_id=tournament.id,
        number=number,
        status=RoundStatus.OPEN,
        open_time=times.open_time,
        close_staking_time=times.close_staking_time,
        close_time=times.close_time,
        resolve_time=times.resolve_time,
        live_era=published.live_era,
        dataset_version=tournament.dataset_version,
        market_date=published.market_date,
    )
    rule = tournament_payout_rule(tournament)
    round_.payout_rule = rule_to_data(rule)
    round_.score_configs = configs_to_data(described_configs(tournament, round_, rule))
    with session.begin_nested():
        session.add(round_)
        names = [own_filename(number, LIVE_FILENAME)]
        if published.current_name is not None:
            names.append(published.current_name)
        for name in names:
            _record_file(session, tournament.dataset_version, name, published, now)
        for file in published.files:
            _record(session, tournament.dataset_version, file, now)
        session.flush()
    crash_point("open:before-commit")
    return round_


def publish_early(
    session: Session, tournament: Tournament, publisher: LivePublisher, times: RoundTimes
) -> EarlyPublication | None:
    """The live era of the round opening at `times`, published now, before the writing
    transaction that opens it (`open_round`): the slow part of an opening, left out of the
    write lock. Its files are keyed by the round's number and are the same bytes for the
    same era date, which every opening of that round on that day shares (the era is the
    business day before the opening's): published before the round is known to open, they
    replace no file a committed row names with other bytes. None if that round, or a later
    one, is open already; raises as `open_round` would."""
    latest = current_round(session, tournament)
    if latest is not None and latest.open_time >= times.open_time:
        return None
    number = _next_number(session, tournament, latest, times)
    live = _publish(tournament, publisher, number, times)
    return EarlyPublication(number, tournament.dataset_version, times, live)


def _next_number(
    session: Session, tournament: Tournament, latest: Round | None, times: RoundTimes
) -> int:
    """The number of the round opening at `times` after `latest`; `RoundScheduleError` if it
    cannot open then."""
    if latest is not None and times.open_time < _open_until(latest):
        state = (
            f"is open until {latest.close_time}"
            if latest.status is RoundStatus.OPEN
            else f"opened at {latest.open_time}"
        )
        raise RoundScheduleError(
            f"round {latest.number} of tournament {tournament.number} {state};"
            f" the next round cannot open at {times.open_time}"
        )
    _refuse_shared_version(session, tournament)
    return 1 if latest is None else latest.number + 1


def _publish(
    tournament: Tournament, publisher: LivePublisher, number: int, times: RoundTimes
) -> PublishedLive:
    try:
        return publisher.publish(tournament, number, times.era_date)
    except Exception as exc:
        raise PublishFailed(
            f"publishing round {number} of tournament {tournament.number} failed:"
            f" {type(exc).__name__}: {exc}"
        ) from exc


def _open_until(round_: Round) -> datetime:
    """Until when `round_` keeps the next round from opening: its close time while it is
    open; once closed (by hand, maybe before that time), its open time."""
    return round_.close_time if round_.status is RoundStatus.OPEN else round_.open_time


def open_round_now(
    session: Session, clock: Clock, tournament: Tournament, publisher: LivePublisher
) -> Round:
    """Open the tournament's next round by hand, now, whatever the calendar says: a window
    as long as today's calendar round (`calendar.round_opened_now`)."""
    schedule = schedule_for(tournament.cadence, tournament.settings)
    times = round_opened_now(schedule, clock.now().replace(microsecond=0))
    return open_round(session, clock, tournament, publisher, times=times)


def tournament_payout_rule(tournament: Tournament) -> PayoutRule:
    """The rule the tournament's next round will resolve by: the default of its kind with
    the `payout_rule` setting's overrides (e.g. `{"clip": "0.05"}`)."""
    try:
        return rule_with(tournament.rules.value, settings_of(tournament).payout_rule)
    except PayoutRuleError as exc:
        raise RoundScheduleError(
            f"tournament {tournament.number}'s payout_rule setting: {exc}"
        ) from None


def described_configs(tournament: Tournament, round_: Round, rule: PayoutRule) -> list[ScoreConfig]:
    """`rule` as the score configs of `tournament`'s `round_`: the scores its ruleset takes,
    over the window of the tournament's calendar."""
    schedule = schedule_for(tournament.cadence, tournament.settings)
    ruleset = ruleset_of(tournament)
    window = ScoringWindow(
        round_number=round_.number,
        total_score_days=schedule.target_days - schedule.target_lag_days,
        returns_lag_days=schedule.target_lag_days,
        data_delay_days=schedule.score_delay.days,
        scoring_start=round_.close_time,
        scoring_end=round_.resolve_time,
    )
    metrics = ruleset.daily_metrics | ruleset.closing_metrics
    return score_configs(rule, metrics, ruleset.rank_metric[0], window, SCORING_VERSION)


def round_payout_rule(round_: Round) -> PayoutRule:
    """The rule `round_` resolves by (the default of its kind if none was recorded)."""
    if round_.payout_rule:
        return rule_from_data(round_.payout_rule)
    return default_rule(round_.tournament.rules.value)


def round_score_configs(round_: Round) -> list[ScoreConfig]:
    """The score configs `round_` recorded when it opened; for a round opened before they
    were recorded, those its recorded payout rule describes."""
    if round_.score_configs is not None:
        return configs_from_data(round_.score_configs)
    return described_configs(round_.tournament, round_, round_payout_rule(round_))


def _refuse_shared_version(session: Session, tournament: Tournament) -> None:
    """Live files are keyed by version and round number: two tournaments publishing into one
    version would overwrite each other's files."""
    other = session.scalar(
        select(Tournament.number)
        .join(Round, Round.tournament_id == Tournament.id)
        .where(Round.dataset_version == tournament.dataset_version, Tournament.id != tournament.id)
        .limit(1)
    )
    if other is not None:
        raise RoundScheduleError(
            f"tournament {other} already publishes live eras into dataset version"
            f" {tournament.dataset_version!r}; tournament {tournament.number} needs its own"
        )


def _record_file(
    session: Session, version: str, filename: str, published: PublishedLive, now: datetime
) -> None:
    stored = StoredRoundFile(filename, published.storage_key, published.size, published.sha256)
    _record(session, version, stored, now)


def _record(session: Session, version: str, file: StoredRoundFile, now: datetime) -> None:
    row = session.scalar(
        select(DatasetFile).where(
            DatasetFile.version == version, DatasetFile.filename == file.filename
        )
    )
    if row is None:
        row = DatasetFile(version=version, filename=file.filename)
        session.add(row)
    row.size, row.sha256, row.storage_key = file.size, file.sha256, file.storage_key
    row.published_at = now


# --- reading ---------------------------------------------------------------------------------


def current_round(session: Session, tournament: Tournament) -> Round | None:
    """The tournament's newest round (open or not), or None before the first opens."""
    return session.scalar(
        select(Round)
        .where(Round.tournament_id == tournament.id)
        .order_by(Round.number.desc())
        .limit(1)
    )


def get_round(session: Session, tournament: Tournament, number: int) -> Round:
    found = session.scalar(
        select(Round).where(Round.tournament_id == tournament.id, Round.number == number)
    )
    if found is None:
        raise RoundNotFound(f"tournament {tournament.number} has no round {number}")
    return found


def rounds_by_id(session: Session, round_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Round]:
    """The rounds of `round_ids` (those that exist), by id."""
    found = session.scalars(select(Round).where(Round.id.in_(list(round_ids))))
    return {round_.id: round_ for round_ in found}


def first_open_round(session: Session) -> Round | None:
    """The newest open round of the lowest-numbered tournament that has one (its tournament
    loaded with it)."""
    return session.scalar(
        select(Round)
        .join(Round.tournament)
        .options(contains_eager(Round.tournament))
        .where(Round.status == RoundStatus.OPEN)
        .order_by(Tournament.number, Round.number.desc())
        .limit(1)
    )


def list_rounds(
    session: Session, tournament: Tournament, statuses: Collection[RoundStatus] | None = None
) -> list[Round]:
    """The tournament's rounds by number, optionally only those in `statuses`."""
    query = select(Round).where(Round.tournament_id == tournament.id).order_by(Round.number)
    if statuses is not None:
        query = query.where(Round.status.in_(list(statuses)))
    return list(session.scalars(query))


def newest_rounds(
    session: Session,
    tournament: Tournament,
    statuses: Collection[RoundStatus] | None = None,
    limit: int | None = None,
) -> list[Round]:
    """The tournament's rounds, newest first: at most `limit` of them (all when None),
    optionally only those in `statuses`."""
    query = select(Round).where(Round.tournament_id == tournament.id).order_by(Round.number.desc())
    if statuses is not None:
        query = query.where(Round.status.in_(list(statuses)))
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def is_open(round_: Round, now: datetime) -> bool:
    """Whether `round_` takes submissions and stakes at `now`."""
    return round_.status is RoundStatus.OPEN and round_.open_time <= now < round_.close_time


def time_left(round_: Round, now: datetime) -> timedelta:
    """How long `round_` still takes submissions at `now` (the tournament's clock, which may
    be a simulated one): zero once it is closed or past its close time."""
    if not is_open(round_, now):
        return timedelta(0)
    return round_.close_time - now
