from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from casetrail.sla_timer.calendar import BusinessCalendar, CalendarError

NY = ZoneInfo("America/New_York")
LONDON = ZoneInfo("Europe/London")
BERLIN = ZoneInfo("Europe/Berlin")
KOLKATA = ZoneInfo("Asia/Kolkata")
MICROSECOND = timedelta(microseconds=1)
CUTOFF, NEXT_DAY_BY = time(15), time(12)


def weekly(*intervals: tuple[time, time], days: int = 5):
    """The same hours on the first `days` weekdays, closed on the rest."""
    return (intervals,) * days + ((),) * (7 - days)


US = BusinessCalendar(
    "us-east-business", "America/New_York", weekly((time(8), time(20))), holiday_country="US"
)
UK = BusinessCalendar(
    "uk-business", "Europe/London", weekly((time(9), time(17, 30))), holiday_country="GB"
)
LUNCH = BusinessCalendar(
    "berlin-lunch",
    "Europe/Berlin",
    weekly((time(9), time(12)), (time(13), time(17))),
    holiday_country="DE",
)
INDIA = BusinessCalendar(
    "india", "Asia/Kolkata", weekly((time(9, 30), time(18, 30)), days=6), holiday_country="IN"
)
# Boundaries inside the hour Berlin skips in March and repeats in October.
NIGHT = BusinessCalendar(
    "berlin-night",
    "Europe/Berlin",
    weekly((time(0, 30), time(2, 30)), (time(2, 45), time(6)), days=7),
)
PAYMENTS = BusinessCalendar.around_the_clock("payments", "America/New_York")


def ny(*args):
    return datetime(*args, tzinfo=NY)


def london(*args):
    return datetime(*args, tzinfo=LONDON)


def utc(*args):
    return datetime(*args, tzinfo=UTC)


# add_business_time


def test_four_business_hours_from_friday_evening_land_on_monday():
    # Friday 2026-11-20 18:00 NY: 2 h left that day, 2 h more from Monday 08:00.
    assert US.add_business_time(ny(2026, 11, 20, 18), timedelta(hours=4)) == ny(2026, 11, 23, 10)


def test_thanksgiving_is_not_a_business_day():
    # Wednesday 2026-11-25 19:00 + 2 h: Thursday 26th is Thanksgiving, so Friday 09:00.
    assert US.add_business_time(ny(2026, 11, 25, 19), timedelta(hours=2)) == ny(2026, 11, 27, 9)
    assert not US.is_business_day(date(2026, 11, 26))
    assert US.next_business_day(date(2026, 11, 25)) == date(2026, 11, 27)


def test_a_start_outside_hours_begins_at_the_next_opening():
    assert US.add_business_time(ny(2026, 11, 23, 6), timedelta(minutes=15)) == ny(
        2026, 11, 23, 8, 15
    )


def test_deadlines_are_utc_instants_whatever_the_zone_of_the_start():
    deadline = US.add_business_time(ny(2026, 11, 23, 9), timedelta(hours=1))
    assert deadline.tzinfo is UTC
    assert deadline == utc(2026, 11, 23, 15)


def test_business_day_length_is_kept_when_new_york_falls_back():
    # US DST ends Sunday 2026-11-01; Friday 10:00 + 12 business hours = Monday 10:00.
    end = US.add_business_time(ny(2026, 10, 30, 10), timedelta(hours=12))
    assert end == ny(2026, 11, 2, 10)
    assert end - ny(2026, 10, 30, 10) == timedelta(days=3, hours=1)


def test_business_day_length_is_kept_when_new_york_springs_forward():
    # US DST starts Sunday 2026-03-08: the weekend is an hour shorter, Monday is not.
    end = US.add_business_time(ny(2026, 3, 6, 10), timedelta(hours=12))
    assert end == ny(2026, 3, 9, 10)
    assert end - ny(2026, 3, 6, 10) == timedelta(days=2, hours=23)


def test_business_day_length_is_kept_across_both_london_changes():
    # BST starts Sunday 2026-03-29 and ends Sunday 2026-10-25; 5.5 h on Friday, 2.5 h Monday.
    spring = UK.add_business_time(london(2026, 3, 27, 12), timedelta(hours=8))
    assert spring == london(2026, 3, 30, 11, 30) == utc(2026, 3, 30, 10, 30)
    autumn = UK.add_business_time(london(2026, 10, 23, 12), timedelta(hours=8))
    assert autumn == london(2026, 10, 26, 11, 30) == utc(2026, 10, 26, 11, 30)


def test_uk_bank_holidays_close_the_calendar():
    # Christmas 2026 is a Friday, so Boxing Day is observed on Monday 28th.
    start = london(2026, 12, 24, 16)
    assert UK.add_business_time(start, timedelta(hours=2)) == london(2026, 12, 29, 9, 30)
    assert not UK.is_business_day(date(2026, 5, 25))  # Spring bank holiday


def test_easter_monday_needs_the_english_subdivision():
    # Great Britain as a whole shares no Easter Monday: Scotland works it.
    england = replace(UK, holiday_subdivision="ENG")
    assert UK.is_business_day(date(2026, 4, 6))
    assert not england.is_business_day(date(2026, 4, 6))


def test_a_lunch_break_is_not_business_time():
    start = datetime(2026, 11, 23, 11, tzinfo=BERLIN)
    assert LUNCH.add_business_time(start, timedelta(hours=2)) == datetime(
        2026, 11, 23, 14, tzinfo=BERLIN
    )
    assert not LUNCH.is_open(datetime(2026, 11, 23, 12, 30, tzinfo=BERLIN))
    assert LUNCH.business_time_between(start, start + timedelta(hours=6)) == timedelta(hours=5)
    assert LUNCH.close_of_business(date(2026, 11, 23)) == datetime(2026, 11, 23, 17, tzinfo=BERLIN)


def test_a_deadline_exactly_at_closing_moves_to_the_next_opening_only_when_more_is_added():
    closing = US.add_business_time(ny(2026, 11, 20, 10), timedelta(hours=10))
    assert closing == ny(2026, 11, 20, 20)
    assert US.add_business_time(closing, timedelta(0)) == ny(2026, 11, 23, 8)
    assert US.add_business_time(closing, timedelta(minutes=1)) == ny(2026, 11, 23, 8, 1)


def test_an_hour_the_clocks_skip_is_not_business_time():
    # Berlin jumps from 02:00 to 03:00 on 2026-03-29: 02:30 and 02:45 both come at the jump.
    assert NIGHT.intervals_on(date(2026, 3, 29)) == [
        (utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 1)),
        (utc(2026, 3, 29, 1), utc(2026, 3, 29, 4)),
    ]
    skipped = BusinessCalendar(
        "skipped", "Europe/Berlin", weekly((time(2, 15), time(2, 45)), days=7)
    )
    assert not skipped.is_business_day(date(2026, 3, 29))
    assert skipped.next_business_day(date(2026, 3, 28)) == date(2026, 3, 30)


def test_an_hour_the_clocks_repeat_is_business_time_once_per_reading():
    # Berlin goes back from 03:00 to 02:00 on 2026-10-25: the shift opens at the first
    # 02:45 and runs through the repeated hour to 06:00, 4 h 15 min of open time.
    assert NIGHT.intervals_on(date(2026, 10, 25)) == [
        (utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 0, 30)),
        (utc(2026, 10, 25, 0, 45), utc(2026, 10, 25, 5)),
    ]


def test_a_sparse_calendar_answers_durations_longer_than_the_search_window():
    one_hour_a_week = BusinessCalendar("one-hour", "UTC", weekly((time(9), time(10)), days=1))
    start = utc(2024, 1, 1, 9)  # a Monday
    assert one_hour_a_week.add_business_time(start, timedelta(hours=600)) == utc(
        2024, 1, 1, 10
    ) + timedelta(weeks=599)


def test_holidays_are_known_outside_any_preloaded_years():
    assert not US.is_business_day(date(2012, 12, 25))
    assert not US.is_business_day(date(2056, 12, 25))
    assert US.is_business_day(date(2056, 12, 26))


# Days


def test_the_end_of_a_day_is_its_local_midnight_even_on_dst_days():
    assert US.end_of_day(date(2026, 3, 8)) == ny(2026, 3, 9) == utc(2026, 3, 9, 4)
    assert US.end_of_day(date(2026, 3, 8)) - US.end_of_day(date(2026, 3, 7)) == timedelta(hours=23)
    assert US.end_of_day(date(2026, 11, 1)) - US.end_of_day(date(2026, 10, 31)) == timedelta(
        hours=25
    )
    assert UK.end_of_day(date(2026, 3, 29)) == london(2026, 3, 30) == utc(2026, 3, 29, 23)


def test_business_days_skip_a_holiday_weekend():
    # Receipt Wednesday before Thanksgiving: Friday 27th, Monday 30th, Tuesday 1st.
    assert US.add_business_days(ny(2026, 11, 25, 10), 3) == ny(2026, 12, 2)
    # Christmas Eve in London: Tuesday 29th and Wednesday 30th after the bank holidays.
    assert UK.add_business_days(london(2026, 12, 24, 10), 2) == london(2026, 12, 31)


def test_the_day_of_receipt_does_not_count_even_when_received_before_opening():
    assert US.add_business_days(ny(2026, 11, 23, 6), 1) == ny(2026, 11, 25)
    assert US.add_business_days(ny(2026, 11, 21, 10), 1) == ny(2026, 11, 24)  # a Saturday


def test_five_working_days_from_monday_before_thanksgiving():
    assert US.add_business_days(ny(2026, 11, 23, 9), 5) == ny(2026, 12, 2)


def test_calendar_days_end_at_local_midnight_on_a_dst_day():
    # 15 days from Saturday 2026-10-17 end as Sunday 1 November ends, in EST.
    assert US.add_calendar_days(ny(2026, 10, 17, 9), 15) == utc(2026, 11, 2, 5)
    # Eight weeks from 2026-01-11 end as Sunday 8 March ends, in EDT.
    assert US.add_calendar_days(ny(2026, 1, 11, 10), 56) == utc(2026, 3, 9, 4)


def test_calendar_days_count_from_the_local_day_not_the_utc_one():
    # 23:30 in New York is already the 17th in UTC.
    assert US.add_calendar_days(ny(2026, 10, 16, 23, 30), 15) == ny(2026, 11, 1)


# Initial contact


@pytest.mark.parametrize(
    ("received", "deadline"),
    [
        (ny(2026, 11, 23, 14, 59), ny(2026, 11, 23, 20)),
        (ny(2026, 11, 23, 15), ny(2026, 11, 24, 12)),
        (ny(2026, 11, 23, 6), ny(2026, 11, 23, 20)),  # before opening counts as before 15:00
        (ny(2026, 11, 23, 21), ny(2026, 11, 24, 12)),
        (ny(2026, 11, 20, 16), ny(2026, 11, 23, 12)),  # Friday afternoon
        (ny(2026, 11, 21, 10), ny(2026, 11, 23, 12)),  # Saturday
        (ny(2026, 11, 25, 16), ny(2026, 11, 27, 12)),  # the eve of Thanksgiving
    ],
)
def test_general_contact_is_same_day_before_three_and_next_day_noon_after(received, deadline):
    assert US.contact_deadline(received, CUTOFF, NEXT_DAY_BY) == deadline


def test_a_short_day_keeps_its_own_close_of_business():
    friday = ((time(8), time(11)),)
    short_friday = replace(US, name="short-friday", hours=(*US.hours[:4], friday, *US.hours[5:]))
    assert short_friday.contact_deadline(ny(2026, 11, 20, 10), CUTOFF, NEXT_DAY_BY) == ny(
        2026, 11, 20, 11
    )
    # After Friday's close, though before 15:00: the same day is already over.
    assert short_friday.contact_deadline(ny(2026, 11, 20, 11, 30), CUTOFF, NEXT_DAY_BY) == ny(
        2026, 11, 23, 12
    )
    # Noon next day is after Friday's close, so the close.
    assert short_friday.contact_deadline(ny(2026, 11, 19, 16), CUTOFF, NEXT_DAY_BY) == ny(
        2026, 11, 20, 11
    )


# Around the clock


def test_a_24_7_calendar_is_elapsed_time_across_dst_and_holidays():
    start = ny(2026, 10, 31, 23)
    assert PAYMENTS.add_business_time(start, timedelta(hours=4)) == ny(2026, 11, 1, 2)
    assert PAYMENTS.business_time_between(start, ny(2026, 11, 1, 2)) == timedelta(hours=4)
    fraud = BusinessCalendar("fraud", "America/New_York", holiday_country="US", always_open=True)
    assert fraud.is_open(ny(2026, 11, 26, 3))
    assert fraud.is_business_day(date(2026, 11, 26))
    assert fraud.add_business_days(ny(2026, 11, 25, 10), 1) == ny(2026, 11, 27)


def test_a_24_7_calendar_days_end_at_its_local_midnight():
    assert PAYMENTS.close_of_business(date(2026, 11, 21)) == ny(2026, 11, 22)
    assert PAYMENTS.contact_deadline(ny(2026, 11, 21, 10), CUTOFF, NEXT_DAY_BY) == ny(2026, 11, 22)
    assert PAYMENTS.contact_deadline(ny(2026, 11, 21, 16), CUTOFF, NEXT_DAY_BY) == ny(
        2026, 11, 22, 12
    )


def test_a_calendar_names_its_version():
    assert US.version == "1"
    payments = BusinessCalendar.around_the_clock("payments", "America/New_York", version="2")
    assert payments.version == "2"
    assert payments.always_open
    assert payments.hours == ()


# Refusals


@pytest.mark.parametrize(
    "call",
    [
        lambda: US.add_business_time(datetime(2026, 11, 23, 10), timedelta(hours=1)),
        lambda: US.business_time_between(ny(2026, 11, 23, 10), datetime(2026, 11, 23, 11)),
        lambda: US.is_open(datetime(2026, 11, 23, 10)),
        lambda: US.add_business_days(datetime(2026, 11, 23, 10), 1),
        lambda: US.add_calendar_days(datetime(2026, 11, 23, 10), 1),
        lambda: US.contact_deadline(datetime(2026, 11, 23, 10), CUTOFF, NEXT_DAY_BY),
        lambda: PAYMENTS.add_business_time(datetime(2026, 11, 23, 10), timedelta(hours=1)),
        lambda: US.add_business_time(ny(2026, 11, 23, 10), timedelta(hours=-1)),
        lambda: US.add_business_days(ny(2026, 11, 23, 10), 0),
        lambda: US.add_calendar_days(ny(2026, 11, 23, 10), 0),
    ],
)
def test_naive_times_negative_durations_and_no_days_are_refused(call):
    with pytest.raises(CalendarError):
        call()


@pytest.mark.parametrize(
    "build",
    [
        lambda: BusinessCalendar("closed", "UTC", ((),) * 7),
        lambda: BusinessCalendar("short-week", "UTC", weekly((time(9), time(17)))[:5]),
        lambda: BusinessCalendar("backwards", "UTC", weekly((time(17), time(9)))),
        lambda: BusinessCalendar(
            "overlap", "UTC", weekly((time(9), time(13)), (time(12), time(17)))
        ),
        lambda: BusinessCalendar("nowhere", "Mars/Olympus_Mons", weekly((time(9), time(17)))),
        lambda: BusinessCalendar(
            "utopia", "UTC", weekly((time(9), time(17))), holiday_country="XX"
        ),
        lambda: BusinessCalendar("unversioned", "UTC", weekly((time(9), time(17))), version=""),
    ],
)
def test_impossible_calendars_are_refused(build):
    with pytest.raises(CalendarError):
        build()


# Properties

CALENDARS = st.sampled_from([US, UK, LUNCH, INDIA, NIGHT, PAYMENTS])
moments = st.datetimes(
    min_value=datetime(2024, 1, 1),
    max_value=datetime(2030, 12, 31),
    timezones=st.sampled_from([NY, LONDON, BERLIN, KOLKATA]),
)
durations = st.integers(min_value=0, max_value=60 * 24 * 20).map(lambda m: timedelta(minutes=m))
positive_durations = durations.filter(lambda d: d > timedelta(0))
offsets = st.integers(min_value=-30 * 86_400, max_value=30 * 86_400).map(
    lambda s: timedelta(seconds=s)
)
properties = settings(max_examples=200, deadline=None)


@properties
@given(calendar=CALENDARS, start=moments, duration=durations)
def test_adding_business_time_adds_exactly_that_much_open_time(calendar, start, duration):
    end = calendar.add_business_time(start, duration)
    assert end >= start
    assert end.tzinfo is UTC
    assert calendar.business_time_between(start, end) == duration


@properties
@given(calendar=CALENDARS, start=moments, first=durations, second=durations)
def test_more_business_time_never_ends_sooner(calendar, start, first, second):
    shorter, longer = sorted((first, second))
    assert calendar.add_business_time(start, shorter) <= calendar.add_business_time(start, longer)


@properties
@given(calendar=CALENDARS, start=moments, first=durations, second=positive_durations)
def test_adding_in_two_steps_equals_adding_at_once(calendar, start, first, second):
    # The second step must be positive: a first step can end exactly at a close, from
    # where adding nothing is the next opening (see the property below).
    stepwise = calendar.add_business_time(calendar.add_business_time(start, first), second)
    assert stepwise == calendar.add_business_time(start, first + second)


@properties
@given(calendar=CALENDARS, moment=moments)
def test_adding_nothing_is_the_moment_itself_or_the_next_opening(calendar, moment):
    opening = calendar.add_business_time(moment, timedelta(0))
    assert calendar.is_open(opening)
    if calendar.is_open(moment):
        # In UTC: a zoned time in a DST gap or fold never equals one in another zone.
        assert opening == moment.astimezone(UTC)
    else:
        assert opening > moment
        assert calendar.business_time_between(moment, opening) == timedelta(0)


@properties
@given(calendar=CALENDARS, start=moments, duration=positive_durations)
def test_a_deadline_falls_inside_or_at_the_end_of_open_hours(calendar, start, duration):
    end = calendar.add_business_time(start, duration)
    assert calendar.is_open(end - MICROSECOND)


@properties
@given(calendar=CALENDARS, moment=moments)
def test_being_open_is_having_open_time_just_after(calendar, moment):
    # Elapsed time is added in UTC: on a zoned datetime `+` moves the wall clock.
    just_after = calendar.business_time_between(moment, moment.astimezone(UTC) + MICROSECOND)
    assert calendar.is_open(moment) == (just_after == MICROSECOND)


@properties
@given(calendar=CALENDARS, start=moments, to_split=offsets, to_end=offsets)
def test_business_time_between_is_antisymmetric_and_additive(calendar, start, to_split, to_end):
    split, end = start.astimezone(UTC) + to_split, start.astimezone(UTC) + to_end
    between = calendar.business_time_between
    assert between(start, end) == -between(end, start)
    assert between(start, end) == between(start, split) + between(split, end)


@properties
@given(calendar=CALENDARS, start=moments, days=st.integers(min_value=1, max_value=30))
def test_business_days_end_a_business_day_n_business_days_later(calendar, start, days):
    deadline = calendar.add_business_days(start, days)
    last_day = deadline.astimezone(calendar.zone).date() - timedelta(days=1)
    assert deadline.tzinfo is UTC
    assert deadline == calendar.end_of_day(last_day)
    assert calendar.is_business_day(last_day)
    received = start.astimezone(calendar.zone).date()
    counted = (received + timedelta(days=n) for n in range(1, (last_day - received).days + 1))
    assert sum(calendar.is_business_day(day) for day in counted) == days


@properties
@given(calendar=CALENDARS, start=moments, days=st.integers(min_value=1, max_value=120))
def test_calendar_days_end_at_a_local_midnight(calendar, start, days):
    deadline = calendar.add_calendar_days(start, days).astimezone(calendar.zone)
    assert deadline.time() == time(0)
    assert deadline.date() == start.astimezone(calendar.zone).date() + timedelta(days=days + 1)


@properties
@given(calendar=CALENDARS, received=moments)
def test_contact_is_due_the_same_business_day_or_by_noon_the_next(calendar, received):
    deadline = calendar.contact_deadline(received, CUTOFF, NEXT_DAY_BY)
    today = received.astimezone(calendar.zone).date()
    following = calendar.next_business_day(today)
    assert deadline > received
    assert deadline in (
        calendar.close_of_business(today),
        min(
            datetime.combine(following, NEXT_DAY_BY, calendar.zone),
            calendar.close_of_business(following),
        ),
    )
