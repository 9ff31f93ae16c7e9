"""Business-hours calendars: working time and working days across weekends, holidays, DST.

All arithmetic happens on aware datetimes, and every instant returned is in UTC. Opening
hours are local wall-clock times in the calendar's zone; each day's intervals are turned
into UTC instants, so a DST change shortens or lengthens the night, never the business
day. A calendar that is always open (payments and fraud incidents run 24/7) is plain
elapsed time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache, cached_property
from itertools import pairwise
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# A calendar with a few open hours a year is still valid; none in ten years is a mistake.
SEARCH_DAYS = 3660
ONE_DAY = timedelta(days=1)

Interval = tuple[datetime, datetime]


class CalendarError(ValueError):
    pass


@dataclass(frozen=True)
class BusinessCalendar:
    name: str
    timezone: str
    hours: tuple[tuple[tuple[time, time], ...], ...] = ()  # per weekday, Monday first
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    # Named on every clock event, so a replay recomputes the deadlines it computed then.
    version: str = "1"
    # Open every instant of every day, public holidays included; `hours` are ignored.
    always_open: bool = False

    def __post_init__(self) -> None:
        if not self.version:
            raise CalendarError(f"{self.name}: the version must not be empty")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise CalendarError(f"{self.name}: unknown timezone {self.timezone!r}") from error
        if self.holiday_country:
            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision)
            except NotImplementedError as error:
                raise CalendarError(f"{self.name}: {error}") from error
        if not self.always_open:
            self._check_hours()

    def _check_hours(self) -> None:
        if len(self.hours) != 7:
            raise CalendarError(f"{self.name}: hours needs one entry per weekday")
        for day in self.hours:
            for opens, closes in day:
                if opens >= closes:
                    raise CalendarError(f"{self.name}: interval {opens}-{closes} is empty")
            for (_, closes), (next_opens, _) in pairwise(day):
                if next_opens < closes:
                    raise CalendarError(f"{self.name}: intervals overlap or are unordered")
        if not any(self.hours):
            raise CalendarError(f"{self.name}: no business hours at all")

    @classmethod
    def around_the_clock(cls, name: str, timezone: str, version: str = "1") -> BusinessCalendar:
        """A 24/7 calendar; its zone still says where a day (for day-based targets) ends."""
        return cls(name, timezone, version=version, always_open=True)

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def is_holiday(self, day: date) -> bool:
        if not self.holiday_country:
            return False
        return day in _public_holidays(self.holiday_country, self.holiday_subdivision, day.year)

    def intervals_on(self, day: date) -> list[Interval]:
        """The day's open intervals as UTC instants, in order, none of them empty."""
        if self.always_open:
            return [(self._instant(day, time(0)), self.end_of_day(day))]
        if self.is_holiday(day):
            return []
        intervals = [
            (self._instant(day, opens), self._instant(day, closes))
            for opens, closes in self.hours[day.weekday()]
        ]
        # An interval inside the hour the clocks skip has no instants at all.
        return [(opens, closes) for opens, closes in intervals if opens < closes]

    def is_business_day(self, day: date) -> bool:
        return self.always_open or bool(self.intervals_on(day))

    def next_business_day(self, day: date) -> date:
        """The first business day strictly after `day`."""
        for _ in range(SEARCH_DAYS):
            day += ONE_DAY
            if self.is_business_day(day):
                return day
        raise CalendarError(f"{self.name}: no business day within {SEARCH_DAYS} days")

    def end_of_day(self, day: date) -> datetime:
        """The local midnight that ends `day` (23 or 25 hours after it began on DST days)."""
        return self._instant(day + ONE_DAY, time(0))

    def close_of_business(self, day: date) -> datetime | None:
        """When the day's last open interval ends; None when the day is closed."""
        intervals = self.intervals_on(day)
        return intervals[-1][1] if intervals else None

    def add_business_time(self, start: datetime, duration: timedelta) -> datetime:
        """The instant when `duration` of open time has passed since `start`.

        A positive duration ends inside an open interval or exactly at its close; a zero
        duration from a closed instant is the next opening.
        """
        start = _utc(start)
        if duration < timedelta(0):
            raise CalendarError("duration must not be negative")
        if self.always_open:
            return start + duration
        remaining = duration
        day = self._local_date(start) - ONE_DAY
        closed_days = 0
        # The guard counts closed days in a row, so a long duration on a sparse calendar
        # is still answered.
        while closed_days < SEARCH_DAYS:
            intervals = self.intervals_on(day)
            for opens, closes in intervals:
                begin = max(opens, start)
                if begin >= closes:
                    continue
                if remaining <= closes - begin:
                    return begin + remaining
                remaining -= closes - begin
            closed_days = 0 if intervals else closed_days + 1
            day += ONE_DAY
        raise CalendarError(f"{self.name}: no business time within {SEARCH_DAYS} days")

    def business_time_between(self, start: datetime, end: datetime) -> timedelta:
        """Open time between two instants (negative when `end` is before `start`)."""
        start, end = _utc(start), _utc(end)
        if end < start:
            return -self.business_time_between(end, start)
        if self.always_open:
            return end - start
        total = timedelta(0)
        day = self._local_date(start) - ONE_DAY
        last = self._local_date(end) + ONE_DAY
        while day <= last:
            for opens, closes in self.intervals_on(day):
                begin, finish = max(opens, start), min(closes, end)
                if finish > begin:
                    total += finish - begin
            day += ONE_DAY
        return total

    def is_open(self, moment: datetime) -> bool:
        moment = _utc(moment)
        if self.always_open:
            return True
        return any(o <= moment < c for o, c in self.intervals_on(self._local_date(moment)))

    def add_business_days(self, start: datetime, days: int) -> datetime:
        """Within `days` business days: the end of the days-th business day after the
        local day of `start`, which does not count itself."""
        day = self._local_date(_utc(start))
        _require_positive(days)
        if self.always_open:
            return self.end_of_day(day + timedelta(days=days))
        for _ in range(days):
            day = self.next_business_day(day)
        return self.end_of_day(day)

    def add_calendar_days(self, start: datetime, days: int) -> datetime:
        """Within `days` calendar days: the end of the days-th day after the local day of
        `start`, whether or not the calendar is open on it."""
        day = self._local_date(_utc(start))
        _require_positive(days)
        return self.end_of_day(day + timedelta(days=days))

    def contact_deadline(self, start: datetime, cutoff: time, next_day_by: time) -> datetime:
        """The initial-contact deadline of a case received at `start`.

        Received on a business day before `cutoff` (a receipt before opening counts):
        by that day's close of business, however early a short day closes. Received at
        or after the cutoff, after that day's close, or on a closed day: by `next_day_by`
        on the next business day, or by its close if it closes sooner.
        """
        start = _utc(start)
        today = self._local_date(start)
        closes = self.close_of_business(today)
        if closes is not None and start < min(self._instant(today, cutoff), closes):
            return closes
        following = self.next_business_day(today)
        _, following_closes = self.intervals_on(following)[-1]
        return min(self._instant(following, next_day_by), following_closes)

    def _local_date(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def _instant(self, day: date, wall: time) -> datetime:
        """The first instant at which the local clock reads `wall` or later on `day`.

        A repeated wall time (clocks go back) is its first occurrence; a skipped one (clocks
        go forward) is the moment of the jump. So a later wall time is never an earlier
        instant and a day's intervals stay ordered and disjoint, whatever their hours.
        """
        local = datetime.combine(day, wall)
        instant = local.replace(tzinfo=self.zone).astimezone(UTC)
        if instant.astimezone(self.zone).replace(tzinfo=None) == local:
            return instant
        # Skipped: read with the offset after the jump it is an instant before the jump,
        # and with the one before it an instant after; zone transitions are whole seconds.
        before = local.replace(tzinfo=self.zone, fold=1).timestamp()
        low, high = math.floor(before), math.ceil(instant.timestamp())
        while high - low > 1:
            middle = (low + high) // 2
            if datetime.fromtimestamp(middle, self.zone).replace(tzinfo=None) >= local:
                high = middle
            else:
                low = middle
        return datetime.fromtimestamp(high, UTC)


@cache
def _public_holidays(country: str, subdivision: str | None, year: int) -> frozenset[date]:
    # One immutable set per year, filled on first use: the holidays object itself grows
    # on lookup, which is not safe across threads.
    table = holidays.country_holidays(country, subdiv=subdivision, years=year, expand=False)
    return frozenset(table)


def _utc(moment: datetime) -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise CalendarError("times must be timezone-aware")
    return moment.astimezone(UTC)


def _require_positive(days: int) -> None:
    if days < 1:
        raise CalendarError("a number of days must be at least 1")
