"""When rounds open, close and resolve: pure functions of a cadence, its settings and a time.

No database, no clock: callers pass the time. Every time is timezone-aware UTC; naive
datetimes are refused.

Daily cadence (Numerai since 2023, scoring-rules §4.2)
    A round opens every Tuesday to Saturday at 12:00 UTC. The Tuesday-Friday rounds close at
    13:00 UTC the same day (a one-hour window). The Saturday round closes on **Monday at
    13:00 UTC** (a 49-hour window): the reference's table says Sunday 14:00, its scoring
    page's example says Monday; we read the latter, which also keeps the weekend round's
    deadline at the same hour as every other deadline. Staking closes with submissions.

Weekly cadence (the 2017-era tournament, §4.3 and §5.1)
    One round a week, opening **Saturday 18:00 UTC** and closing **Monday 14:00 UTC**
    (a 44-hour window, the 2017-era deadline); staking closes with submissions.

The era a round covers
    A round's live era is the market as of the close of the last business day (Mon-Fri)
    before the day the round opens: a Tuesday round covers Monday, ..., a Saturday round
    covers Friday; the weekly round (Saturday) covers Friday, the week's era day. Holidays
    are the publisher's business: it takes the market's last trading day on or before.

Resolution ("20D2L")
    The main target is the return over `target_horizon_days` (20) trading days starting
    `target_lag_days` (2) trading days after the era date, so its last day is the era date
    plus 22 business days. Results are available `score_delay_days` calendar days after that
    day's close, and resolution happens on the first scoring day on or after then, at
    `resolve_at`. Daily: delay 2, scoring days Tuesday-Saturday, 12:00 UTC, which gives
    exactly the reference table: Tue and Wed rounds resolve 31 days after opening (on a
    Friday and a Saturday), Thu, Fri and Sat rounds 33 days after (Tue, Wed, Thu). Weekly:
    delay 0, any day, 18:00 UTC: the Friday era's last target day is a Tuesday, so a round
    resolves 31 days after it opened (§5.1: "a weekly round paid out 31 days after it
    started").

Every number above is a default: a tournament overrides any of them in its `settings` JSON
under the key ``"calendar"``, e.g. ``{"calendar": {"window_minutes": 120}}`` (see
`CalendarSettings` for the keys). Windows may not overlap: a round always closes no later
than the next one opens, so at most one round of a tournament is open at any time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from crowdquant.db.models.tournaments import Cadence
from crowdquant.tournament.errors import ServiceError

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
SETTINGS_KEY = "calendar"
DAY = timedelta(days=1)
WEEK = timedelta(days=7)


class CalendarError(ServiceError):
    """A tournament's calendar settings are invalid, or a time is not a round's open time."""


class CalendarSettings(BaseModel):
    """The keys a tournament may set under ``settings["calendar"]``; days are "mon".."sun"."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    open_days: tuple[str, ...] = Field(min_length=1, description="days a round opens")
    open_at: time = Field(description="UTC time of day a round opens, e.g. '12:00'")
    window_minutes: int = Field(ge=1, description="minutes from open to close")
    window_minutes_by_day: dict[str, int] = Field(
        default_factory=dict, description="per-opening-day overrides of window_minutes"
    )
    staking_closes_minutes_before_close: int = Field(0, ge=0)
    target_lag_days: int = Field(2, ge=0, description="trading days from era close to returns")
    target_horizon_days: int = Field(20, ge=1, description="trading days the target spans")
    score_delay_days: int = Field(
        2, ge=0, description="calendar days from the target's last close to its score"
    )
    scoring_days: tuple[str, ...] = Field(min_length=1, description="days rounds may resolve")
    resolve_at: time = Field(description="UTC time of day a round resolves")

    @field_validator("open_days", "scoring_days")
    @classmethod
    def _known_days(cls, days: tuple[str, ...]) -> tuple[str, ...]:
        for day in days:
            _day_index(day)
        return days

    @field_validator("window_minutes_by_day")
    @classmethod
    def _known_override_days(cls, windows: dict[str, int]) -> dict[str, int]:
        for day, minutes in windows.items():
            _day_index(day)
            if minutes < 1:
                raise ValueError(f"the window on {day} must be at least 1 minute")
        return windows

    @field_validator("open_at", "resolve_at")
    @classmethod
    def _naive_time(cls, value: time) -> time:
        if value.tzinfo is not None and value.utcoffset() != timedelta(0):
            raise ValueError("times of day are UTC; give them without an offset")
        return value.replace(tzinfo=None)


DEFAULTS: Mapping[Cadence, Mapping[str, Any]] = {
    Cadence.DAILY: {
        "open_days": ("tue", "wed", "thu", "fri", "sat"),
        "open_at": "12:00",
        "window_minutes": 60,
        "window_minutes_by_day": {"sat": 49 * 60},  # Saturday 12:00 to Monday 13:00
        "staking_closes_minutes_before_close": 0,
        "target_lag_days": 2,
        "target_horizon_days": 20,
        "score_delay_days": 2,
        "scoring_days": ("tue", "wed", "thu", "fri", "sat"),
        "resolve_at": "12:00",
    },
    Cadence.WEEKLY: {
        "open_days": ("sat",),
        "open_at": "18:00",
        "window_minutes": 44 * 60,  # Saturday 18:00 to Monday 14:00
        "window_minutes_by_day": {},
        "staking_closes_minutes_before_close": 0,
        "target_lag_days": 2,
        "target_horizon_days": 20,
        "score_delay_days": 0,
        "scoring_days": DAY_NAMES,
        "resolve_at": "18:00",
    },
}


@dataclass(frozen=True)
class Schedule:
    """A tournament's calendar, validated: build it with `schedule_for`."""

    cadence: Cadence
    open_weekdays: frozenset[int]  # 0 = Monday
    open_at: time
    windows: Mapping[int, timedelta]  # opening weekday → window length
    staking_closes_before_close: timedelta
    target_days: int  # lag + horizon, in trading days after the era date
    score_delay: timedelta
    scoring_weekdays: frozenset[int]
    resolve_at: time
    target_lag_days: int = 2
    """Of `target_days`, those before the target's first return."""


@dataclass(frozen=True)
class RoundTimes:
    """One round's timetable. `era_date` is the day whose close the live era shows."""

    open_time: datetime
    close_staking_time: datetime
    close_time: datetime
    era_date: date
    resolve_time: datetime

    def is_open_at(self, now: datetime) -> bool:
        return self.open_time <= _utc(now) < self.close_time


def schedule_for(cadence: Cadence | str, settings: Mapping[str, Any] | None = None) -> Schedule:
    """The schedule of a tournament with `cadence` and `settings` (its settings JSON).

    Raises CalendarError if ``settings["calendar"]`` has unknown keys or invalid values, or if
    one round's window would reach past the next round's opening.
    """
    try:
        cadence = Cadence(cadence)
    except ValueError as exc:
        raise CalendarError(f"unknown cadence {cadence!r}") from exc
    overrides = (settings or {}).get(SETTINGS_KEY) or {}
    if not isinstance(overrides, Mapping):
        raise CalendarError(f'settings["{SETTINGS_KEY}"] must be an object')
    merged = {**DEFAULTS[cadence], **overrides}
    if "open_days" in overrides and "window_minutes_by_day" not in overrides:
        # the default per-day windows follow the days that still open
        days = {str(day).lower() for day in overrides["open_days"] or ()}
        merged["window_minutes_by_day"] = {
            day: minutes
            for day, minutes in DEFAULTS[cadence]["window_minutes_by_day"].items()
            if day in days
        }
    try:
        parsed = CalendarSettings.model_validate(merged)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'calendar'}: {error['msg']}"
            for error in exc.errors()
        )
        raise CalendarError(f"invalid calendar settings: {problems}") from None

    open_weekdays = frozenset(_day_index(day) for day in parsed.open_days)
    by_day = {_day_index(day): minutes for day, minutes in parsed.window_minutes_by_day.items()}
    for day in by_day:
        if day not in open_weekdays:
            raise CalendarError(f"a window is set for {DAY_NAMES[day]}, when no round opens")
    windows = {
        day: timedelta(minutes=by_day.get(day, parsed.window_minutes)) for day in open_weekdays
    }
    staking = timedelta(minutes=parsed.staking_closes_minutes_before_close)
    for day, window in windows.items():
        gap = _days_to_next_opening(day, open_weekdays) * DAY
        if window > gap:
            raise CalendarError(
                f"the round opening on {DAY_NAMES[day]} would close after the next one opens"
            )
        if staking > window:
            raise CalendarError(f"staking would close before the {DAY_NAMES[day]} round opens")
    return Schedule(
        cadence=cadence,
        open_weekdays=open_weekdays,
        open_at=parsed.open_at,
        windows=windows,
        staking_closes_before_close=staking,
        target_days=parsed.target_lag_days + parsed.target_horizon_days,
        score_delay=timedelta(days=parsed.score_delay_days),
        scoring_weekdays=frozenset(_day_index(day) for day in parsed.scoring_days),
        resolve_at=parsed.resolve_at,
        target_lag_days=parsed.target_lag_days,
    )


def round_times(schedule: Schedule, open_time: datetime) -> RoundTimes:
    """The timetable of the round opening at `open_time`, which must be one of the schedule's
    open times."""
    open_time = _utc(open_time)
    if open_time.weekday() not in schedule.open_weekdays or open_time.timetz() != _at(
        schedule.open_at
    ):
        raise CalendarError(f"no round of this {schedule.cadence} tournament opens at {open_time}")
    return _times(schedule, open_time, schedule.windows[open_time.weekday()])


def round_opened_now(schedule: Schedule, now: datetime) -> RoundTimes:
    """An operator's round opened by hand at `now`, as long as today's calendar round (the
    shortest window on a day without one)."""
    now = _utc(now)
    return _times(
        schedule, now, schedule.windows.get(now.weekday(), min(schedule.windows.values()))
    )


def _times(schedule: Schedule, open_time: datetime, window: timedelta) -> RoundTimes:
    close_time = open_time + window
    era_date = previous_business_day(open_time.date())
    return RoundTimes(
        open_time=open_time,
        close_staking_time=close_time - schedule.staking_closes_before_close,
        close_time=close_time,
        era_date=era_date,
        resolve_time=resolve_time(schedule, era_date, close_time),
    )


def next_round(schedule: Schedule, after: datetime) -> RoundTimes:
    """The first round opening at or after `after`."""
    after = _utc(after)
    day = after.date()
    while True:
        if day.weekday() in schedule.open_weekdays:
            candidate = _combine(day, schedule.open_at)
            if candidate >= after:
                return round_times(schedule, candidate)
        day += DAY


def latest_round(schedule: Schedule, at: datetime) -> RoundTimes:
    """The last round opening at or before `at` (it may have closed since)."""
    at = _utc(at)
    day = at.date()
    while True:
        if day.weekday() in schedule.open_weekdays:
            candidate = _combine(day, schedule.open_at)
            if candidate <= at:
                return round_times(schedule, candidate)
        day -= DAY


def round_open_at(schedule: Schedule, now: datetime) -> RoundTimes | None:
    """The round whose submission window contains `now`, if any (at most one: windows never
    overlap)."""
    latest = latest_round(schedule, now)
    return latest if latest.is_open_at(now) else None


def resolve_time(schedule: Schedule, era_date: date, close_time: datetime) -> datetime:
    """When a round on `era_date` resolves: the first scoring day on or after the target's last
    trading day plus the score delay, at `resolve_at`, and never before the round closes."""
    day = add_business_days(era_date, schedule.target_days) + schedule.score_delay
    while True:
        candidate = _combine(day, schedule.resolve_at)
        if day.weekday() in schedule.scoring_weekdays and candidate >= close_time:
            return candidate
        day += DAY


def add_business_days(day: date, count: int) -> date:
    """`day` moved `count` business days (Mon-Fri) forward; count >= 0."""
    if count < 0:
        raise ValueError("count must be >= 0")
    while count:
        day += DAY
        if day.weekday() < 5:
            count -= 1
    return day


def previous_business_day(day: date) -> date:
    """The last Monday-Friday strictly before `day`."""
    day -= DAY
    while day.weekday() >= 5:
        day -= DAY
    return day


def _day_index(name: str) -> int:
    try:
        return DAY_NAMES.index(name.lower())
    except ValueError:
        raise ValueError(f"unknown day {name!r}: use one of {', '.join(DAY_NAMES)}") from None


def _days_to_next_opening(day: int, open_weekdays: frozenset[int]) -> int:
    return min((other - day - 1) % 7 + 1 for other in open_weekdays)


def _at(value: time) -> time:
    return value.replace(tzinfo=UTC)


def _combine(day: date, at: time) -> datetime:
    return datetime.combine(day, at, tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise CalendarError(f"naive datetime {value!r}: times are timezone-aware UTC")
    return value.astimezone(UTC)
