"""Round timing per cadence: daily Tue-Sat rounds and the 2017 weekly round."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest

from crowdquant.db.models import Cadence
from crowdquant.tournament.calendar import (
    CalendarError,
    RoundTimes,
    Schedule,
    add_business_days,
    latest_round,
    next_round,
    previous_business_day,
    round_open_at,
    round_opened_now,
    round_times,
    schedule_for,
)

DAILY = schedule_for(Cadence.DAILY)
WEEKLY = schedule_for(Cadence.WEEKLY)
SUNDAY = datetime(2026, 3, 1, tzinfo=UTC)  # Sunday 1 March 2026
WEEKDAY = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def rounds(schedule: Schedule, start: datetime, count: int) -> list[RoundTimes]:
    found, after = [], start
    for _ in range(count):
        times = next_round(schedule, after)
        found.append(times)
        after = times.open_time + timedelta(seconds=1)
    return found


def test_daily_rounds_open_tuesday_to_saturday_at_noon() -> None:
    three_weeks = rounds(DAILY, SUNDAY, 15)
    assert [WEEKDAY[r.open_time.weekday()] for r in three_weeks[:5]] == [
        "Tue",
        "Wed",
        "Thu",
        "Fri",
        "Sat",
    ]
    assert {r.open_time.weekday() for r in three_weeks} == {1, 2, 3, 4, 5}
    assert all(r.open_time.time() == time(12) for r in three_weeks)
    assert three_weeks[-1].open_time == datetime(2026, 3, 21, 12, tzinfo=UTC)
    assert all(r.open_time.tzinfo is UTC for r in three_weeks)


def test_daily_windows_are_an_hour_and_the_weekend_round_closes_on_monday() -> None:
    for times in rounds(DAILY, SUNDAY, 10):
        if times.open_time.weekday() == 5:  # Saturday 12:00 → Monday 13:00
            assert times.close_time == times.open_time + timedelta(days=2, hours=1)
            assert WEEKDAY[times.close_time.weekday()] == "Mon"
        else:
            assert times.close_time == times.open_time + timedelta(hours=1)
        assert times.close_staking_time == times.close_time
        assert times.close_time.time() == time(13)


def test_a_round_covers_the_business_day_before_it_opens() -> None:
    eras = [r.era_date for r in rounds(DAILY, SUNDAY, 5)]
    assert eras == [date(2026, 3, d) for d in (2, 3, 4, 5, 6)]  # Monday to Friday
    assert rounds(WEEKLY, SUNDAY, 1)[0].era_date == date(2026, 3, 6)  # the week's Friday


@pytest.mark.parametrize(
    ("opens", "days", "resolves_on"),
    [
        ("Tue", 31, "Fri"),
        ("Wed", 31, "Sat"),
        ("Thu", 33, "Tue"),
        ("Fri", 33, "Wed"),
        ("Sat", 33, "Thu"),
    ],
)
def test_daily_rounds_resolve_as_in_the_reference_table(
    opens: str, days: int, resolves_on: str
) -> None:
    for times in rounds(DAILY, SUNDAY, 30):
        if WEEKDAY[times.open_time.weekday()] != opens:
            continue
        assert (times.resolve_time.date() - times.open_time.date()).days == days
        assert WEEKDAY[times.resolve_time.weekday()] == resolves_on
        assert times.resolve_time.time() == time(12)
        # 20 trading days of returns starting 2 after the era day, scored 2 days later
        last_target_day = add_business_days(times.era_date, 22)
        assert times.resolve_time.date() >= last_target_day + timedelta(days=2)


def test_the_weekly_round_opens_saturday_evening_closes_monday_and_resolves_31_days_on() -> None:
    four = rounds(WEEKLY, SUNDAY, 4)
    first = four[0]
    assert first.open_time == datetime(2026, 3, 7, 18, tzinfo=UTC)  # Saturday
    assert first.close_time == datetime(2026, 3, 9, 14, tzinfo=UTC)  # Monday
    assert first.close_staking_time == first.close_time
    assert first.resolve_time == first.open_time + timedelta(days=31)  # a Tuesday, 18:00
    assert [b.open_time - a.open_time for a, b in itertools.pairwise(four)] == [
        timedelta(days=7)
    ] * 3


def test_the_window_containing_a_time() -> None:
    tuesday_noon = datetime(2026, 3, 3, 12, tzinfo=UTC)
    assert round_open_at(DAILY, tuesday_noon) == round_times(DAILY, tuesday_noon)
    assert round_open_at(DAILY, tuesday_noon + timedelta(minutes=59)) is not None
    assert round_open_at(DAILY, tuesday_noon + timedelta(hours=1)) is None  # close is exclusive
    assert round_open_at(DAILY, tuesday_noon - timedelta(seconds=1)) is None
    sunday = datetime(2026, 3, 8, 9, tzinfo=UTC)
    weekend = round_open_at(DAILY, sunday)
    assert weekend is not None and weekend.open_time == datetime(2026, 3, 7, 12, tzinfo=UTC)
    weekly = round_open_at(WEEKLY, sunday)
    assert weekly is not None and weekly.open_time == datetime(2026, 3, 7, 18, tzinfo=UTC)
    assert round_open_at(WEEKLY, datetime(2026, 3, 11, tzinfo=UTC)) is None
    assert latest_round(DAILY, tuesday_noon).open_time == tuesday_noon
    assert next_round(DAILY, tuesday_noon).open_time == tuesday_noon


def test_times_in_other_zones_are_read_as_utc_and_naive_ones_refused() -> None:
    new_york = timezone(timedelta(hours=-5))
    assert round_open_at(DAILY, datetime(2026, 3, 3, 7, 30, tzinfo=new_york)) is not None
    with pytest.raises(CalendarError, match="naive"):
        next_round(DAILY, datetime(2026, 3, 3, 12))
    with pytest.raises(CalendarError, match="no round"):
        round_times(DAILY, datetime(2026, 3, 3, 12, 30, tzinfo=UTC))


def test_settings_override_the_defaults() -> None:
    schedule = schedule_for(
        Cadence.DAILY,
        {
            "payout": {"ignored": True},
            "calendar": {
                "open_at": "09:30",
                "window_minutes": 120,
                "window_minutes_by_day": {"sat": 60},
                "staking_closes_minutes_before_close": 30,
            },
        },
    )
    tuesday = round_times(schedule, datetime(2026, 3, 3, 9, 30, tzinfo=UTC))
    assert tuesday.close_time == datetime(2026, 3, 3, 11, 30, tzinfo=UTC)
    assert tuesday.close_staking_time == datetime(2026, 3, 3, 11, tzinfo=UTC)
    saturday = round_times(schedule, datetime(2026, 3, 7, 9, 30, tzinfo=UTC))
    assert saturday.close_time - saturday.open_time == timedelta(hours=1)

    short_horizon = schedule_for(Cadence.WEEKLY, {"calendar": {"target_horizon_days": 5}})
    weekly = next_round(short_horizon, SUNDAY)
    assert weekly.resolve_time == datetime(2026, 3, 17, 18, tzinfo=UTC)  # Fri + 7 trading days


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        ({"window_minutes": 0}, "window_minutes"),
        ({"open_days": ["tue", "someday"]}, "unknown day"),
        ({"open_days": []}, "open_days"),
        ({"surprise": 1}, "surprise"),
        ({"open_at": "25:00"}, "open_at"),
        ({"window_minutes": 25 * 60}, "close after the next one opens"),
        ({"window_minutes_by_day": {"sun": 60}}, "no round opens"),
        ({"staking_closes_minutes_before_close": 61}, "staking"),
        ("daily", "must be an object"),
    ],
)
def test_invalid_calendar_settings_are_refused(calendar: object, message: str) -> None:
    with pytest.raises(CalendarError, match=message):
        schedule_for(Cadence.DAILY, {"calendar": calendar})


def test_an_unknown_cadence_is_refused() -> None:
    with pytest.raises(CalendarError, match="cadence"):
        schedule_for("hourly")


def test_business_days() -> None:
    friday = date(2026, 3, 6)
    assert add_business_days(friday, 1) == date(2026, 3, 9)
    assert add_business_days(friday, 22) == date(2026, 4, 7)
    assert add_business_days(friday, 0) == friday
    assert previous_business_day(date(2026, 3, 9)) == friday  # Monday → Friday
    assert previous_business_day(date(2026, 3, 8)) == friday  # Sunday → Friday
    with pytest.raises(ValueError):
        add_business_days(friday, -1)


def test_a_round_opened_by_hand_lasts_as_long_as_the_days_window() -> None:
    schedule = schedule_for(Cadence.DAILY)
    tuesday = datetime(2026, 1, 6, 15, 30, tzinfo=UTC)
    times = round_opened_now(schedule, tuesday)
    assert times.open_time == tuesday
    assert times.close_time - tuesday == schedule.windows[tuesday.weekday()]
    assert times.era_date == date(2026, 1, 5)
    sunday = datetime(2026, 1, 11, 9, 0, tzinfo=UTC)  # no round opens on Sundays
    assert round_opened_now(schedule, sunday).close_time - sunday == min(schedule.windows.values())
