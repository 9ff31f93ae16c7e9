"""SLA clocks: which clocks a triaged case runs, their deadlines, and when they breach.

Pure: the policy, the calendar and the current time are arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.contracts.events import CaseTriaged, ClockKind
from casetrail.runtime.eventstore import event_id, publish
from casetrail.sla_timer.calendar import BusinessCalendar
from casetrail.sla_timer.policy import SlaPolicy, Target


@dataclass(frozen=True)
class ClockPlan:
    clock: ClockKind
    rule_id: str
    target: Target
    deadline: datetime


def deadline_for(target: Target, start: datetime, calendar: BusinessCalendar) -> datetime:
    duration = timedelta(minutes=target.minutes)
    if target.basis == "calendar":
        return start + duration
    return calendar.add_business_time(start, duration)


def _tightest(
    clock: ClockKind, candidates: list[tuple[str, Target]], start: datetime, cal: BusinessCalendar
) -> ClockPlan:
    plans = [ClockPlan(clock, rule, t, deadline_for(t, start, cal)) for rule, t in candidates]
    return min(plans, key=lambda plan: plan.deadline)


def plan_clocks(
    case: CaseTriaged, policy: SlaPolicy, calendar: BusinessCalendar
) -> list[ClockPlan]:
    """Every clock the case runs from the moment it was opened; the tightest rule wins."""
    start = case.opened_at
    first_response = [
        (f"FR-SEV-{case.severity.value}", policy.first_response.by_severity[case.severity])
    ]
    if case.channel in policy.first_response.by_channel:
        first_response.append(
            (f"FR-CHANNEL-{case.channel.value}", policy.first_response.by_channel[case.channel])
        )
    resolution = [(f"RES-SEV-{case.severity.value}", policy.resolution.by_severity[case.severity])]
    if case.case_type in policy.resolution.by_case_type:
        resolution.append(
            (f"RES-TYPE-{case.case_type.value}", policy.resolution.by_case_type[case.case_type])
        )
    if case.channel in policy.resolution.by_channel:
        resolution.append(
            (f"RES-CHANNEL-{case.channel.value}", policy.resolution.by_channel[case.channel])
        )
    return [
        _tightest(ClockKind.FIRST_RESPONSE, first_response, start, calendar),
        _tightest(ClockKind.RESOLUTION, resolution, start, calendar),
    ]


def clock_id_for(case_id: UUID, clock: ClockKind) -> UUID:
    return uuid5(case_id, f"clock:{clock.value}")


class Clock(Aggregate):
    """One SLA clock of one case: started with a deadline, then met or breached, once."""

    @staticmethod
    def create_id(clock_id: UUID) -> UUID:
        return clock_id

    @event("Started")
    def __init__(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        clock: str,
        started_at: datetime,
        deadline: datetime,
        basis: str,
        target_minutes: int,
        rule_id: str,
        calendar: str,
        policy_version: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.case_id = case_id
        self.clock = clock
        self.started_at = started_at
        self.deadline = deadline
        self.basis = basis
        self.rule_id = rule_id
        self.calendar = calendar
        self.policy_version = policy_version
        self.correlation_id = correlation_id
        self.state = "running"
        self.breached_at: datetime | None = None

    def breach(self, now: datetime, late_after: timedelta) -> bool:
        """Breaches a running clock whose deadline has passed; False when there is nothing to do."""
        if self.state != "running" or now < self.deadline:
            return False
        self._breached(
            case_id=self.case_id,
            clock_id=self.id,
            clock=self.clock,
            deadline=self.deadline,
            breached_at=now,
            late=now - self.deadline > late_after,
            correlation_id=self.correlation_id,
            causation_id=event_id(type(self).__name__, self.id, 1),
        )
        return True

    @event("Breached")
    def _breached(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        clock: str,
        deadline: datetime,
        breached_at: datetime,
        late: bool,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.state = "breached"
        self.breached_at = breached_at


publish(Clock.Started, contract.ClockStarted)
publish(Clock.Breached, contract.ClockBreached)


def start_clock(
    case: CaseTriaged,
    plan: ClockPlan,
    policy: SlaPolicy,
    correlation_id: UUID,
    causation_id: UUID,
) -> Clock:
    clock_id = clock_id_for(case.case_id, plan.clock)
    return Clock(
        case_id=case.case_id,
        clock_id=clock_id,
        clock=plan.clock.value,
        started_at=case.opened_at,
        deadline=plan.deadline,
        basis=plan.target.basis,
        target_minutes=plan.target.minutes,
        rule_id=plan.rule_id,
        calendar=policy.calendar.name,
        policy_version=policy.version,
        correlation_id=correlation_id,
        causation_id=causation_id,
    )
