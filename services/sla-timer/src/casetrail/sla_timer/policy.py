"""The SLA policy file's schema, validated when the service starts."""

from __future__ import annotations

import tomllib
from datetime import time
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from casetrail.contracts.events import CaseType, Channel, Severity
from casetrail.runtime.models import Strict
from casetrail.sla_timer.calendar import WEEKDAYS, BusinessCalendar

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


class Target(Strict):
    minutes: int = Field(ge=1, le=525_600)
    basis: Literal["business", "calendar"]


class CalendarPolicy(Strict):
    name: str = Field(min_length=1)
    timezone: str
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    hours: dict[str, tuple[tuple[time, time], ...]]

    @field_validator("hours")
    @classmethod
    def _every_weekday(cls, hours: dict[str, object]) -> dict[str, object]:
        if set(hours) != set(WEEKDAYS):
            raise ValueError(f"hours needs exactly the days {list(WEEKDAYS)}")
        return hours

    def build(self) -> BusinessCalendar:
        return BusinessCalendar(
            name=self.name,
            timezone=self.timezone,
            hours=tuple(self.hours[day] for day in WEEKDAYS),
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
        )


class FirstResponse(Strict):
    by_channel: dict[Channel, Target] = {}
    by_severity: dict[Severity, Target]


class Resolution(Strict):
    by_severity: dict[Severity, Target]
    by_case_type: dict[CaseType, Target] = {}
    by_channel: dict[Channel, Target] = {}


class SlaPolicy(Strict):
    version: str = Field(min_length=1)
    late_after_seconds: int = Field(ge=0)
    calendar: CalendarPolicy
    first_response: FirstResponse
    resolution: Resolution

    @model_validator(mode="after")
    def _complete(self) -> SlaPolicy:
        for name, targets in (
            ("first_response", self.first_response.by_severity),
            ("resolution", self.resolution.by_severity),
        ):
            missing = set(Severity) - set(targets)
            if missing:
                raise ValueError(f"{name}.by_severity lacks {sorted(missing)}")
        self.calendar.build()  # raises on an impossible calendar
        return self


def load_policy(path: Path | None = None) -> SlaPolicy:
    with (path or DEFAULT_POLICY).open("rb") as file:
        return SlaPolicy.model_validate(tomllib.load(file))
