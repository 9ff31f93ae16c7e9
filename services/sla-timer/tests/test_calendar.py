from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casetrail.sla_timer.calendar import BusinessCalendar, CalendarError
from casetrail.sla_timer.policy import load_policy

NY = ZoneInfo("America/New_York")
CALENDAR = load_policy().calendar.build()


def ny(*args):
    return datetime(*args, tzinfo=NY)


def test_four_business_hours_from_friday_evening_land_on_monday():
    # Friday 2026-11-20 18:00 NY: 2 h left that day, 2 h more from Monday 08:00.
    assert CALENDAR.add_business_time(ny(2026, 11, 20, 18), timedelta(hours=4)) == ny(
        2026, 11, 23, 10
    )


def test_thanksgiving_is_not_a_business_day():
    # Wednesday 2026-11-25 19:00 + 2 h: Thursday 26th is Thanksgiving, so Friday 09:00.
    assert CALENDAR.add_business_time(ny(2026, 11, 25, 19), timedelta(hours=2)) == ny(
        2026, 11, 27, 9
    )


def test_a_start_outside_hours_begins_at_the_next_opening():
    assert CALENDAR.add_business_time(ny(2026, 11, 23, 6), timedelta(minutes=15)) == ny(
        2026, 11, 23, 8, 15
    )


def test_business_day_length_is_kept_across_the_dst_change():
    # US DST ends Sunday 2026-11-01; Friday 10:00 + 12 business hours = Monday 10:00.
    end = CALENDAR.add_business_time(ny(2026, 10, 30, 10), timedelta(hours=12))
    assert end == ny(2026, 11, 2, 10)
    assert end - ny(2026, 10, 30, 10) == timedelta(days=3, hours=1)


def test_a_lunch_break_is_not_business_time():
    hours = ((time(9), time(12)), (time(13), time(17)))
    calendar = BusinessCalendar("lunch", "Europe/London", (hours,) * 5 + ((), ()))
    london = ZoneInfo("Europe/London")
    start = datetime(2026, 11, 23, 11, tzinfo=london)
    assert calendar.add_business_time(start, timedelta(hours=2)) == datetime(
        2026, 11, 23, 14, tzinfo=london
    )


def test_naive_times_and_empty_calendars_are_refused():
    with pytest.raises(CalendarError):
        CALENDAR.add_business_time(datetime(2026, 11, 23, 10), timedelta(hours=1))
    with pytest.raises(CalendarError):
        BusinessCalendar("closed", "UTC", ((),) * 7)


moments = st.datetimes(
    min_value=datetime(2024, 1, 1), max_value=datetime(2028, 12, 31), timezones=st.just(UTC)
)
durations = st.integers(min_value=0, max_value=60 * 24 * 20).map(lambda m: timedelta(minutes=m))


@settings(max_examples=200, deadline=None)
@given(start=moments, duration=durations)
def test_adding_business_time_adds_exactly_that_much_open_time(start, duration):
    end = CALENDAR.add_business_time(start, duration)
    assert end >= start
    assert CALENDAR.business_time_between(start, end) == duration


@settings(max_examples=200, deadline=None)
@given(start=moments, duration=durations.filter(lambda d: d > timedelta(0)))
def test_a_deadline_always_falls_in_open_hours(start, duration):
    end = CALENDAR.add_business_time(start, duration)
    assert CALENDAR.is_open(end - timedelta(microseconds=1))


@settings(max_examples=100, deadline=None)
@given(start=moments, first=durations, second=durations)
def test_adding_in_two_steps_equals_adding_at_once(start, first, second):
    stepwise = CALENDAR.add_business_time(CALENDAR.add_business_time(start, first), second)
    assert stepwise == CALENDAR.add_business_time(start, first + second) or second == timedelta(0)
