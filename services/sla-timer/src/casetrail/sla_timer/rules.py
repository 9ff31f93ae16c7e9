"""Which clocks a case runs, and their deadlines: the SLA policy applied to a case's facts.

Pure: no I/O and no wall clock; the calendars come from the policy, built once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from casetrail.contracts.events import CaseType, Channel, ClockKind, Severity
from casetrail.sla_timer.calendar import BusinessCalendar
from casetrail.sla_timer.policy import (
    ClockRule,
    Conditions,
    Regime,
    SlaPolicy,
    UnknownMarket,
    UnknownRegime,
)

__all__ = [
    "CaseFacts",
    "ClockSpec",
    "UnknownMarket",
    "UnknownRegime",
    "active_regimes",
    "applicable_clocks",
    "calendars_of",
    "conditions_hold",
    "headline",
]

Measure = Literal["business", "calendar"]
# The facts a list condition names, and the yes/no facts a flag condition names.
LISTED = ("channel", "plan", "severity", "case_type", "market", "agency", "tier")
FLAGS = ("incident", "new_account", "provisional_credit", "exceptional", "payment_services")


@dataclass(frozen=True)
class CaseFacts:
    """What the rules know of a case; None is "not known yet"."""

    opened_at: datetime
    channel: Channel | None = None
    severity: Severity | None = None
    case_type: CaseType | None = None
    tier: int | None = None
    plan: str | None = None
    market: str | None = None  # None: the policy's default market
    agency: str | None = None
    # Named on the case, on top of its market's regimes and those whose applies_when holds.
    regimes: frozenset[str] = frozenset()
    incident: bool = False
    new_account: bool = False
    provisional_credit: bool = False
    exceptional: bool = False
    payment_services: bool = False
    billing_cycle_days: int | None = None
    charged_at: datetime | None = None
    dispute_opened_at: datetime | None = None

    def __post_init__(self) -> None:
        for moment in (self.opened_at, self.charged_at, self.dispute_opened_at):
            if moment is not None and moment.utcoffset() is None:
                raise ValueError("case facts' times must be timezone-aware")
        if self.billing_cycle_days is not None and self.billing_cycle_days < 1:
            raise ValueError("a billing cycle lasts at least one day")
        object.__setattr__(self, "regimes", frozenset(self.regimes))


@dataclass(frozen=True)
class ClockSpec:
    """One clock a rule asks the case to run, with its deadline."""

    rule_id: str
    clock: ClockKind
    regime: str | None
    started_at: datetime
    deadline: datetime
    # How elapsed time counts for warnings and pauses: business time only for minutes on a
    # business basis; day-based and calendar targets are measured in wall time.
    measure: Measure
    calendar: str
    calendar_version: str
    pausable: bool
    escalate_to_tier: int | None


def calendars_of(policy: SlaPolicy) -> Mapping[str, BusinessCalendar]:
    """The policy's calendars by name, built once when the policy was validated."""
    return policy.built_calendars


def conditions_hold(conditions: Conditions, facts: CaseFacts, market: str) -> bool:
    """Whether every condition given holds; `market` is the case's resolved market."""
    known = {name: getattr(facts, name) for name in LISTED} | {"market": market}
    for name in LISTED:
        allowed = getattr(conditions, name)
        if allowed is not None and (known[name] is None or known[name] not in allowed):
            return False
    return all(
        getattr(conditions, name) is None or getattr(conditions, name) == getattr(facts, name)
        for name in FLAGS
    )


def active_regimes(facts: CaseFacts, policy: SlaPolicy) -> tuple[str, ...]:
    """The regimes the case falls under, by name, sorted."""
    market = policy.market_code(facts.market)
    unknown = sorted(facts.regimes - set(policy.regimes))
    if unknown:
        raise UnknownRegime(f"regimes {unknown} are not in policy {policy.version}")
    named = set(policy.markets[market].regimes) | facts.regimes
    named |= {
        name
        for name, regime in policy.regimes.items()
        if regime.applies_when is not None and conditions_hold(regime.applies_when, facts, market)
    }
    return tuple(sorted(named))


def applicable_clocks(facts: CaseFacts, policy: SlaPolicy) -> list[ClockSpec]:
    """Every clock whose rule applies, each its own; sorted by deadline, then rule id.

    Raises UnknownMarket or UnknownRegime when the case names one the policy lacks.
    """
    market = policy.market_code(facts.market)
    candidates: list[tuple[str | None, Regime | None, ClockRule]] = [
        (None, None, rule) for rule in policy.rules
    ]
    for name in active_regimes(facts, policy):
        regime = policy.regimes[name]
        candidates += [(name, regime, rule) for rule in regime.deadlines]
    specs = [
        spec
        for name, regime, rule in candidates
        if conditions_hold(rule.when, facts, market)
        and (spec := _spec(rule, name, regime, facts, market, policy)) is not None
    ]
    return sorted(specs, key=lambda spec: (spec.deadline, spec.rule_id))


def headline(specs: Iterable[ClockSpec]) -> ClockSpec | None:
    """The clock with the tightest deadline (ties: the lowest rule id)."""
    return min(specs, key=lambda spec: (spec.deadline, spec.rule_id), default=None)


def _spec(
    rule: ClockRule,
    regime_name: str | None,
    regime: Regime | None,
    facts: CaseFacts,
    market: str,
    policy: SlaPolicy,
) -> ClockSpec | None:
    start = {
        "opened": facts.opened_at,
        "charged": facts.charged_at,
        "dispute_opened": facts.dispute_opened_at,
    }[rule.starts]
    if start is None:
        return None
    start = start.astimezone(UTC)
    calendar = calendars_of(policy)[_calendar_name(rule, regime, facts, market, policy)]
    deadline, measure = _deadline(rule, start, calendar, facts, policy)
    return ClockSpec(
        rule_id=rule.rule_id,
        clock=rule.clock,
        regime=regime_name,
        started_at=start,
        deadline=deadline,
        measure=measure,
        calendar=calendar.name,
        calendar_version=calendar.version,
        pausable=rule.pausable if rule.pausable is not None else regime is None,
        escalate_to_tier=rule.escalate_to_tier,
    )


def _calendar_name(
    rule: ClockRule, regime: Regime | None, facts: CaseFacts, market: str, policy: SlaPolicy
) -> str:
    if rule.calendar is not None:
        return rule.calendar
    if regime is not None:
        # A regime counts its jurisdiction's days whatever the rota: an incident does not
        # make a regulator's business days calendar days.
        return regime.calendar or policy.markets[market].calendar
    entry = policy.markets[market]
    return entry.incident_calendar if facts.incident else entry.calendar


def _deadline(
    rule: ClockRule,
    start: datetime,
    calendar: BusinessCalendar,
    facts: CaseFacts,
    policy: SlaPolicy,
) -> tuple[datetime, Measure]:
    match rule.target:
        case "minutes":
            assert rule.minutes is not None
            duration = timedelta(minutes=rule.minutes)
            if rule.basis == "business":
                return calendar.add_business_time(start, duration), "business"
            return start + duration, "calendar"
        case "business_days":
            assert rule.business_days is not None
            return calendar.add_business_days(start, rule.business_days), "calendar"
        case "calendar_days":
            assert rule.calendar_days is not None
            return calendar.add_calendar_days(start, rule.calendar_days), "calendar"
        case "contact_cutoff":
            assert rule.contact_cutoff is not None
            cutoff = rule.contact_cutoff
            return calendar.contact_deadline(start, cutoff.before, cutoff.next_day_by), "calendar"
        case "billing_cycles":
            assert rule.billing_cycles is not None
            cycle = facts.billing_cycle_days or policy.default_billing_cycle_days
            deadline = calendar.add_calendar_days(start, rule.billing_cycles * cycle)
            if rule.max_calendar_days is not None:
                deadline = min(deadline, calendar.add_calendar_days(start, rule.max_calendar_days))
            return deadline, "calendar"
    raise AssertionError(f"unhandled target {rule.target}")
