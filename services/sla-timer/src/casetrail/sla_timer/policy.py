"""The SLA policy file's schema, validated when the service starts."""

from __future__ import annotations

import tomllib
from collections.abc import Iterator, Mapping
from datetime import time
from itertools import pairwise
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from casetrail.contracts.events import CaseType, Channel, ClockKind, Severity
from casetrail.runtime.models import Strict
from casetrail.sla_timer.calendar import WEEKDAYS, BusinessCalendar

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
Basis = Literal["business", "calendar"]
Start = Literal["opened", "charged", "dispute_opened"]
# The targets a rule may name; it names exactly one.
TARGETS = ("minutes", "business_days", "calendar_days", "contact_cutoff", "billing_cycles")
# A list condition that matches nothing is a typo, not a rule.
Names = Annotated[tuple[str, ...], Field(min_length=1)]
Days = Annotated[int, Field(ge=1, le=3660)]


class UnknownMarket(ValueError):
    """A case names a market the policy does not define."""


class UnknownRegime(ValueError):
    """A case names a regulatory regime the policy does not define."""


class CalendarPolicy(Strict):
    """One business calendar; its name is its key under `[calendars]`."""

    name: str = Field(min_length=1)
    version: str = Field("1", min_length=1)
    timezone: str
    holiday_country: str | None = None
    holiday_subdivision: str | None = None
    always_open: bool = False
    # Per weekday, any number of (opens, closes) intervals; an empty list is a closed day.
    hours: dict[Weekday, tuple[tuple[time, time], ...]] | None = None

    @model_validator(mode="after")
    def _hours_or_always_open(self) -> CalendarPolicy:
        if self.always_open:
            if self.hours is not None or self.holiday_country is not None:
                raise ValueError(f"{self.name}: an always-open calendar has no hours or holidays")
        elif self.hours is None or set(self.hours) != set(WEEKDAYS):
            raise ValueError(f"{self.name}: hours needs exactly the days {list(WEEKDAYS)}")
        return self

    def build(self) -> BusinessCalendar:
        if self.always_open:
            return BusinessCalendar.around_the_clock(self.name, self.timezone, self.version)
        assert self.hours is not None
        return BusinessCalendar(
            name=self.name,
            timezone=self.timezone,
            hours=tuple(self.hours[day] for day in WEEKDAYS),
            holiday_country=self.holiday_country,
            holiday_subdivision=self.holiday_subdivision,
            version=self.version,
        )


class Conditions(Strict):
    """Facts a rule needs. Every condition given must hold; an omitted one matches anything.

    A list condition on a fact the case does not know yet does not match: a plan rule
    waits until the plan is known.
    """

    channel: Annotated[tuple[Channel, ...], Field(min_length=1)] | None = None
    plan: Names | None = None
    severity: Annotated[tuple[Severity, ...], Field(min_length=1)] | None = None
    case_type: Annotated[tuple[CaseType, ...], Field(min_length=1)] | None = None
    market: Names | None = None
    agency: Names | None = None
    tier: Annotated[tuple[Literal[1, 2, 3], ...], Field(min_length=1)] | None = None
    incident: bool | None = None
    new_account: bool | None = None
    provisional_credit: bool | None = None
    exceptional: bool | None = None
    payment_services: bool | None = None


class ContactCutoff(Strict):
    """Received before `before` (local): contact by that day's close of business; else
    by `next_day_by` on the next business day."""

    before: time = time(15)
    next_day_by: time = time(12)


class ClockRule(Strict):
    """One clock a case runs when the rule's conditions hold, with exactly one target."""

    rule_id: str = Field(min_length=1, max_length=100)
    clock: ClockKind
    when: Conditions = Conditions()
    minutes: int | None = Field(None, ge=1, le=525_600)
    basis: Basis | None = None
    business_days: Days | None = None
    calendar_days: Days | None = None
    contact_cutoff: ContactCutoff | None = None
    # Reg Z: within `billing_cycles` cycles of the case's length, and no later than
    # `max_calendar_days`.
    billing_cycles: int | None = Field(None, ge=1, le=24)
    max_calendar_days: Days | None = None
    starts: Start = "opened"
    # None: a plain rule's clock pauses while the case waits on the customer; a regime's
    # deadline never does.
    pausable: bool | None = None
    escalate_to_tier: int | None = Field(None, ge=1, le=3)
    calendar: str | None = None

    @model_validator(mode="after")
    def _one_target(self) -> ClockRule:
        named = [target for target in TARGETS if getattr(self, target) is not None]
        if len(named) != 1:
            raise ValueError(
                f"{self.rule_id}: needs exactly one target among {list(TARGETS)}, "
                f"got {named or 'none'}"
            )
        if (self.minutes is None) != (self.basis is None):
            raise ValueError(f"{self.rule_id}: `basis` goes with `minutes`, and only with it")
        if self.max_calendar_days is not None and self.billing_cycles is None:
            raise ValueError(f"{self.rule_id}: `max_calendar_days` caps `billing_cycles` only")
        return self

    @property
    def target(self) -> str:
        return next(target for target in TARGETS if getattr(self, target) is not None)


class Regime(Strict):
    """A regulatory profile: its deadlines, counted on its jurisdiction's calendar."""

    title: str = Field(min_length=1)
    # None: the case's market calendar (a profile that is not tied to one jurisdiction).
    calendar: str | None = None
    # None: the regime applies only where a market or the case names it; {} applies to
    # every case.
    applies_when: Conditions | None = None
    deadlines: tuple[ClockRule, ...] = Field(min_length=1)

    @field_validator("deadlines")
    @classmethod
    def _never_paused(cls, deadlines: tuple[ClockRule, ...]) -> tuple[ClockRule, ...]:
        # A regulator's clock keeps running while the company waits on the customer.
        paused = [rule.rule_id for rule in deadlines if rule.pausable]
        if paused:
            raise ValueError(f"regulatory deadlines cannot be paused: {paused}")
        return deadlines


class MarketPolicy(Strict):
    calendar: str
    # Payments and fraud incidents run on this one (a 24/7 rota).
    incident_calendar: str
    # Regimes that apply to every complaint in the market.
    regimes: tuple[str, ...] = ()


class EventMatcher(Strict):
    """An event of `type` whose named payload fields each hold one of the listed values."""

    type: str = Field(min_length=1)
    fields: dict[str, Annotated[tuple[str | bool, ...], Field(min_length=1)]] = {}

    def matches(self, event_type: str, data: Mapping[str, Any]) -> bool:
        if event_type != self.type:
            return False
        for field, allowed in self.fields.items():
            if field not in data:
                return False
            value = data[field]
            # `1 == True` in Python: a flag and a number must not stand in for each other.
            if not any(type(value) is type(option) and value == option for option in allowed):
                return False
        return True


class ContactAttempts(Strict):
    max_attempts: int = Field(3, ge=1, le=20)
    # Each attempt on a different (market-local) business day.
    distinct_days: bool = True
    flag_rule_id: str = Field("IC-ATTEMPTS-EXHAUSTED", min_length=1)


class SlaPolicy(Strict):
    version: str = Field(min_length=1)
    # A breach that fires more than this after its deadline (the service was down) is late.
    late_after_seconds: int = Field(60, ge=0)
    warning_fractions: tuple[float, ...] = (0.75, 0.90)
    default_market: str = "US"
    default_billing_cycle_days: int = Field(30, ge=1, le=366)
    calendars: dict[str, CalendarPolicy] = Field(min_length=1)
    markets: dict[str, MarketPolicy] = Field(min_length=1)
    rules: tuple[ClockRule, ...] = ()
    regimes: dict[str, Regime] = {}
    met_by: dict[ClockKind, tuple[EventMatcher, ...]]
    pause_on: tuple[EventMatcher, ...] = ()
    resume_on: tuple[EventMatcher, ...] = ()
    contact_attempts: ContactAttempts = ContactAttempts()

    _built: Mapping[str, BusinessCalendar] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _name_calendars(cls, data: Any) -> Any:
        # A calendar's name is its key; the file need not repeat it.
        if isinstance(data, dict) and isinstance(data.get("calendars"), dict):
            data = dict(data)
            data["calendars"] = {
                name: {"name": name, **entry} if isinstance(entry, dict) else entry
                for name, entry in data["calendars"].items()
            }
        return data

    @field_validator("warning_fractions")
    @classmethod
    def _fractions(cls, fractions: tuple[float, ...]) -> tuple[float, ...]:
        if any(not 0 < fraction < 1 for fraction in fractions):
            raise ValueError("each warning fraction lies strictly between 0 and 1")
        if any(a >= b for a, b in pairwise(fractions)):
            raise ValueError("warning fractions must be strictly increasing")
        return fractions

    @model_validator(mode="after")
    def _consistent(self) -> SlaPolicy:
        if not self.rules and not self.regimes:
            raise ValueError("the policy has no rules and no regimes: nothing would be timed")
        for name, entry in self.calendars.items():
            if entry.name != name:
                raise ValueError(f"calendar {name!r} is named {entry.name!r}")
        self._check_references()
        ids = [rule.rule_id for _, rule in self.all_rules()]
        duplicates = sorted({rule_id for rule_id in ids if ids.count(rule_id) > 1})
        if duplicates:
            raise ValueError(f"duplicate rule ids: {duplicates}")
        used = {rule.clock for _, rule in self.all_rules()}
        unmet = sorted(kind.value for kind in used if not self.met_by.get(kind))
        if unmet:
            raise ValueError(f"clocks with no met_by entry, which nothing could meet: {unmet}")
        # Raises on an impossible calendar; building holidays is slow, so keep the result.
        self._built = MappingProxyType({name: c.build() for name, c in self.calendars.items()})
        return self

    def _check_references(self) -> None:
        def calendar(name: str | None, where: str) -> None:
            if name is not None and name not in self.calendars:
                raise ValueError(f"{where}: unknown calendar {name!r}")

        def known_markets(conditions: Conditions | None, where: str) -> None:
            unknown = sorted(set(conditions.market or ()) - set(self.markets)) if conditions else []
            if unknown:
                raise ValueError(f"{where}: unknown markets {unknown}")

        if self.default_market not in self.markets:
            raise ValueError(f"default_market {self.default_market!r} is not a market")
        for code, market in self.markets.items():
            calendar(market.calendar, f"market {code}")
            calendar(market.incident_calendar, f"market {code}")
            unknown = sorted(set(market.regimes) - set(self.regimes))
            if unknown:
                raise ValueError(f"market {code}: unknown regimes {unknown}")
        for name, regime in self.regimes.items():
            calendar(regime.calendar, f"regime {name}")
            known_markets(regime.applies_when, f"regime {name}")
        for regime, rule in self.all_rules():
            where = f"rule {rule.rule_id}" + (f" of regime {regime}" if regime else "")
            calendar(rule.calendar, where)
            known_markets(rule.when, where)

    def all_rules(self) -> Iterator[tuple[str | None, ClockRule]]:
        """Every rule with the regime it belongs to (None for a plain rule)."""
        for rule in self.rules:
            yield None, rule
        for name, regime in self.regimes.items():
            for rule in regime.deadlines:
                yield name, rule

    @property
    def built_calendars(self) -> Mapping[str, BusinessCalendar]:
        """The calendars, built once when the policy was validated."""
        return self._built

    def market_code(self, market: str | None) -> str:
        code = market or self.default_market
        if code not in self.markets:
            raise UnknownMarket(f"market {code!r} is not in policy {self.version}")
        return code

    def market(self, market: str | None) -> MarketPolicy:
        return self.markets[self.market_code(market)]

    def market_calendar(self, market: str | None) -> str:
        """The name of the market's business calendar (None: the default market)."""
        return self.market(market).calendar


def load_policy(path: Path | None = None) -> SlaPolicy:
    """The policy in a TOML file (as people write it) or JSON (as tools generate it)."""
    path = path or DEFAULT_POLICY
    with path.open("rb") as file:
        if path.suffix == ".json":
            return SlaPolicy.model_validate_json(file.read())
        return SlaPolicy.model_validate(tomllib.load(file))
