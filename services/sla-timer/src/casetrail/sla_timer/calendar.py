"""Business-hours calendars: adding working time across weekends, holidays and DST.

All arithmetic happens on aware datetimes. Opening hours are local wall-clock times in
the calendar's zone; each day's intervals are turned into UTC instants, so a DST change
shortens or lengthens the night, never the business day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cached_property
from itertools import pairwise
from zoneinfo import ZoneInfo

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with a few open hours a year is still valid; none in ten years is a mistake.
SEARCH_DAYS = 3660
PRELOADED_HOLIDAY_YEARS = range(2015, 2051)


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class BusinessCalendar:
    name: str
    timezone: str
    hours: tuple[tuple[tuple[time, time], ...], ...]  # per weekday, Monday first
    holiday_country: str | None = None
    holiday_subdivision: str | None = None

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise CalendarError("hours needs one entry per weekday")
        for day in self.hours:
            for opens, closes in day:
                if opens >= closes:
                    raise CalendarError(f"{self.name}: interval {opens}-{closes} is empty")
            for (_, closes), (next_opens, _) in pairwise(day):
                if next_opens < closes:
                    raise CalendarError(f"{self.name}: intervals overlap or are unordered")
        if not any(self.hours):
            raise CalendarError(f"{self.name}: no business hours at all")

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def public_holidays(self) -> holidays.HolidayBase | None:
        if not self.holiday_country:
            return None
        # Filled once for the years in use: growing it lazily is not safe across threads.
        return holidays.country_holidays(
            self.holiday_country, subdiv=self.holiday_subdivision, years=PRELOADED_HOLIDAY_YEARS
        )

    def is_holiday(self, day: date) -> bool:
        return self.public_holidays is not None and day in self.public_holidays

    def intervals_on(self, day: date) -> list[tuple[datetime, datetime]]:
        """The day's open intervals as UTC instants."""
        if self.is_holiday(day):
            return []
        return [
            (
                datetime.combine(day, opens, self.zone).astimezone(UTC),
                datetime.combine(day, closes, self.zone).astimezone(UTC),
            )
            for opens, closes in self.hours[day.weekday()]
        ]

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of open time has passed since `start`."""
        _require_aware(start)
        if duration < timedelta(0):
            raise CalendarError("duration must not be negative")
        remaining = duration
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        for _ in range(SEARCH_DAYS):
            for opens, closes in self.intervals_on(day):
                begin = max(opens, start)
                if begin >= closes:
                    continue
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
            day += timedelta(days=1)
        raise CalendarError(f"{self.name}: no business time within {SEARCH_DAYS} days")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two instants (negative when `end` is before `start`)."""
        _require_aware(start)
        _require_aware(end)
        if end < start:
            return -self.business_time_between(end, start)
        total = timedelta(0)
        day = start.astimezone(self.zone).date() - timedelta(days=1)
        last = end.astimezone(self.zone).date() + timedelta(days=1)
        while day <= last:
            for opens, closes in self.intervals_on(day):
                begin, finish = max(opens, start), min(closes, end)
                if finish > begin:
                    total += finish - begin
            day += timedelta(days=1)
        return total

    def is_open(self, moment: datetime) -> bool:
        _require_aware(moment)
        day = moment.astimezone(self.zone).date()
        return any(o <= moment < c for o, c in self.intervals_on(day))


def _require_aware(moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError("times must be timezone-aware")
