"""A case's SLA clocks as one aggregate: started, paused, resumed, warned, met, breached.

Pure: the policy, the calendars and the current time are arguments. Each clock keeps the
time it may use (its budget, measured in business or wall time) and what it used before
its current stretch, so a pause, a new calendar or a new policy moves the deadline
without rewriting anything already recorded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.contracts.events import (
    CaseEscalated,
    CaseOpened,
    CaseReclassified,
    CaseTriaged,
    ClockKind,
    MessageReceived,
    Payload,
    RefundPath,
    RefundPathDecided,
    RefundRequested,
)
from casetrail.runtime.eventstore import event_id, publish
from casetrail.runtime.service import DomainError
from casetrail.sla_timer.calendar import BusinessCalendar
from casetrail.sla_timer.policy import SlaPolicy
from casetrail.sla_timer.rules import CaseFacts, ClockSpec, applicable_clocks

OPEN = frozenset({"running", "paused"})
BREACH = "breach"
# Which contact kind a channel's message shows the customer has on file.
CONTACT_KIND_OF_CHANNEL = {
    "email": "email",
    "phone": "phone",
    "sms": "phone",
    "whatsapp": "phone",
    "social": "social",
}


class ContactAttemptRefused(DomainError):
    status_code = 409
    code = "contact_attempt_refused"


class CaseNotKnownYet(DomainError):
    status_code = 404
    code = "case_not_known_yet"


def measured(calendar: BusinessCalendar, measure: str, start: datetime, end: datetime) -> timedelta:
    if measure == "business":
        return calendar.business_time_between(start, end)
    return end - start


def advanced(
    calendar: BusinessCalendar, measure: str, start: datetime, amount: timedelta
) -> datetime:
    amount = max(amount, timedelta(0))
    if measure == "business":
        return calendar.add_business_time(start, amount)
    return start + amount


@dataclass(frozen=True)
class RunningClock:
    """One clock's state: what it may use, what it used, and where it stands."""

    clock_id: UUID
    rule_id: str
    clock: ClockKind
    started_at: datetime
    budget: timedelta
    measure: str
    calendar: str
    pausable: bool
    escalate_to_tier: int | None
    deadline: datetime
    cause: UUID  # the clock's latest published event: what its warnings and breach follow
    policy_version: str
    calendar_version: str
    state: str = "running"
    stretch_from: datetime | None = None  # the current running stretch began here
    used_before: timedelta = timedelta(0)  # measured time used before that stretch
    warned: tuple[float, ...] = ()
    settled_at: datetime | None = None
    on_time: bool | None = None

    def used_at(self, moment: datetime, calendar: BusinessCalendar) -> timedelta:
        if self.state != "running" or self.stretch_from is None:
            return self.used_before
        return self.used_before + measured(calendar, self.measure, self.stretch_from, moment)

    def instant_used(self, amount: timedelta, calendar: BusinessCalendar) -> datetime:
        """When the clock will have used `amount`, counting on from its current stretch."""
        assert self.stretch_from is not None
        return advanced(calendar, self.measure, self.stretch_from, amount - self.used_before)


@dataclass(frozen=True)
class Timer:
    clock_id: UUID
    purpose: str  # "breach" or "warning:<fraction>"
    due_at: datetime

    @property
    def timer_id(self) -> UUID:
        return uuid5(self.clock_id, f"{self.purpose}@{self.due_at.isoformat()}")


def facts_from(data: Payload, at: datetime) -> dict[str, Any]:
    """The case facts an event carries, as plain values (stored in the aggregate)."""
    match data:
        case CaseOpened():
            source = data.source
            return {
                "opened_at": data.opened_at,
                "channel": data.channel.value,
                "market": source.get("market"),
                "plan": source.get("plan"),
                "agency": source.get("agency"),
                "regimes": sorted(source.get("regimes") or []),
                **{
                    flag: bool(source.get(flag))
                    for flag in (
                        "incident",
                        "new_account",
                        "provisional_credit",
                        "exceptional",
                        "payment_services",
                    )
                    if flag in source
                },
                **(
                    {"billing_cycle_days": source["billing_cycle_days"]}
                    if isinstance(source.get("billing_cycle_days"), int)
                    else {}
                ),
            }
        case CaseTriaged():
            return {
                "opened_at": data.opened_at,
                "channel": data.channel.value,
                "severity": data.severity.value,
                "case_type": data.case_type.value,
                "tier": data.tier,
            }
        case CaseReclassified():
            return {"severity": data.severity.value, "case_type": data.case_type.value}
        case CaseEscalated():
            return {"tier": data.to_tier}
        case RefundRequested() if data.charged_at is not None:
            return {"charged_at": data.charged_at}
        case RefundPathDecided() if data.path is RefundPath.CHARGEBACK_OR_DISPUTE:
            return {"dispute_opened_at": data.decided_at}
    return {}


def contact_kinds_from(data: Payload) -> set[str]:
    if isinstance(data, CaseOpened | MessageReceived):
        kind = CONTACT_KIND_OF_CHANNEL.get(data.channel.value)
        return {kind} if kind else set()
    return set()


def case_facts(facts: Mapping[str, Any], policy: SlaPolicy) -> CaseFacts | None:
    """The rules' view of the facts; None until the case's opening time is known.

    A market or regime this policy does not know is left out (the default market's clocks
    run) rather than refused: the case was accepted, and its clocks must still run.
    """
    if facts.get("opened_at") is None:
        return None
    market = facts.get("market") if facts.get("market") in policy.markets else None
    regimes = frozenset(r for r in facts.get("regimes") or () if r in policy.regimes)
    return CaseFacts(
        opened_at=facts["opened_at"],
        channel=facts.get("channel") and contract.Channel(facts["channel"]),
        severity=facts.get("severity") and contract.Severity(facts["severity"]),
        case_type=facts.get("case_type") and contract.CaseType(facts["case_type"]),
        tier=facts.get("tier"),
        plan=facts.get("plan"),
        market=market,
        agency=facts.get("agency"),
        regimes=regimes,
        incident=facts.get("incident", False),
        new_account=facts.get("new_account", False),
        provisional_credit=facts.get("provisional_credit", False),
        exceptional=facts.get("exceptional", False),
        payment_services=facts.get("payment_services", False),
        billing_cycle_days=facts.get("billing_cycle_days"),
        charged_at=facts.get("charged_at"),
        dispute_opened_at=facts.get("dispute_opened_at"),
    )


def budget_of(spec: ClockSpec, calendars: Mapping[str, BusinessCalendar]) -> timedelta:
    """The time a clock may use, measured the way it counts (business or wall time)."""
    return measured(calendars[spec.calendar], spec.measure, spec.started_at, spec.deadline)


def clock_id_for(case_id: UUID, rule_id: str) -> UUID:
    return uuid5(case_id, f"clock:{rule_id}")


class CaseClocks(Aggregate):
    """Every SLA clock of one case, and the facts that decide which clocks run."""

    @staticmethod
    def create_id(case_id: UUID) -> UUID:
        return uuid5(case_id, "sla-clocks")

    @event("Noted")
    def __init__(self, *, case_id: UUID, correlation_id: UUID) -> None:
        self.case_id = case_id
        self.correlation_id = correlation_id
        self.facts: dict[str, Any] = {}
        self.contact_kinds: list[str] = []
        self.clocks: dict[UUID, RunningClock] = {}
        self.attempts: list[datetime] = []
        self.contact_attempts_exhausted = False
        self.cause: UUID | None = None

    # Facts ---------------------------------------------------------------------------

    def observe(
        self,
        event_type: str,
        data: Payload,
        at: datetime,
        cause: UUID,
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
    ) -> None:
        """One case event: new facts (clocks start or move), then met, paused, resumed."""
        self.cause = cause
        learned = facts_from(data, at)
        kinds = sorted(set(self.contact_kinds) | contact_kinds_from(data))
        changed = {k: v for k, v in learned.items() if self.facts.get(k) != v}
        if changed or kinds != self.contact_kinds:
            self._facts_noted(facts=changed, contact_kinds=kinds)
            if changed:
                self.reconcile(policy, calendars, at, reason=f"{event_type} changed the facts")
        fields = data.model_dump(mode="json")
        self._meet(event_type, fields, at, policy)
        if any(matcher.matches(event_type, fields) for matcher in policy.pause_on):
            self._pause_all(at, calendars)
        if any(matcher.matches(event_type, fields) for matcher in policy.resume_on):
            self._resume_all(at, calendars)

    @event("FactsNoted")
    def _facts_noted(self, *, facts: dict[str, Any], contact_kinds: list[str]) -> None:
        self.facts = {**self.facts, **facts}
        self.contact_kinds = contact_kinds

    def reconcile(
        self,
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
        now: datetime,
        reason: str,
    ) -> None:
        """Brings the clocks in line with the facts and the policy: starts the new ones,
        moves the deadlines that changed, withdraws those that no longer apply."""
        facts = case_facts(self.facts, policy)
        if facts is None:
            return
        wanted = {spec.rule_id: spec for spec in applicable_clocks(facts, policy)}
        for spec in wanted.values():
            clock_id = clock_id_for(self.case_id, spec.rule_id)
            existing = self.clocks.get(clock_id)
            if existing is None:
                self._start(clock_id, spec, policy, calendars)
            elif existing.state in OPEN:
                self._recompute(existing, spec, policy, calendars, now, reason)
        for clock in list(self.clocks.values()):
            if clock.state in OPEN and clock.rule_id not in wanted:
                self._clock_withdrawn(
                    case_id=self.case_id,
                    clock_id=clock.clock_id,
                    policy_version=clock.policy_version,
                    calendar_version=clock.calendar_version,
                    clock=clock.clock.value,
                    rule_id=clock.rule_id,
                    reason=reason,
                    withdrawn_at=now,
                    correlation_id=self.correlation_id,
                    causation_id=self.cause,
                )

    def _start(
        self,
        clock_id: UUID,
        spec: ClockSpec,
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
    ) -> None:
        budget = budget_of(spec, calendars)
        self._clock_started(
            case_id=self.case_id,
            clock_id=clock_id,
            clock=spec.clock.value,
            rule_id=spec.rule_id,
            regime=spec.regime,
            started_at=spec.started_at,
            deadline=spec.deadline,
            basis=spec.measure,
            target_minutes=max(1, int(budget.total_seconds() // 60)),
            calendar=spec.calendar,
            calendar_version=spec.calendar_version,
            policy_version=policy.version,
            pausable=spec.pausable,
            escalate_to_tier=spec.escalate_to_tier,
            budget_seconds=budget.total_seconds(),
            correlation_id=self.correlation_id,
            causation_id=self.cause,
        )

    @event("ClockStarted")
    def _clock_started(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        clock: str,
        rule_id: str,
        regime: str | None,
        started_at: datetime,
        deadline: datetime,
        basis: str,
        target_minutes: int,
        calendar: str,
        calendar_version: str,
        policy_version: str,
        pausable: bool,
        escalate_to_tier: int | None,
        budget_seconds: float,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = RunningClock(
            clock_id=clock_id,
            rule_id=rule_id,
            clock=ClockKind(clock),
            started_at=started_at,
            budget=timedelta(seconds=budget_seconds),
            measure=basis,
            calendar=calendar,
            pausable=pausable,
            escalate_to_tier=escalate_to_tier,
            deadline=deadline,
            cause=self._this_event(),
            policy_version=policy_version,
            calendar_version=calendar_version,
            stretch_from=started_at,
        )

    def _recompute(
        self,
        clock: RunningClock,
        spec: ClockSpec,
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
        now: datetime,
        reason: str,
    ) -> None:
        moved = replace(
            clock,
            budget=budget_of(spec, calendars),
            measure=spec.measure,
            calendar=spec.calendar,
            escalate_to_tier=spec.escalate_to_tier,
        )
        calendar = calendars[spec.calendar]
        deadline = moved.instant_used(moved.budget, calendar) if moved.state == "running" else None
        same = (moved.budget, moved.calendar) == (clock.budget, clock.calendar)
        if same and (deadline is None or deadline == clock.deadline):
            return
        self._clock_recomputed(
            case_id=self.case_id,
            clock_id=clock.clock_id,
            clock=clock.clock.value,
            rule_id=clock.rule_id,
            previous_deadline=clock.deadline,
            deadline=deadline or clock.deadline,
            budget_seconds=moved.budget.total_seconds(),
            basis=spec.measure,
            calendar=spec.calendar,
            calendar_version=spec.calendar_version,
            policy_version=policy.version,
            escalate_to_tier=spec.escalate_to_tier,
            reason=reason,
            recomputed_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.cause,
        )

    @event("ClockRecomputed")
    def _clock_recomputed(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        clock: str,
        rule_id: str,
        previous_deadline: datetime,
        deadline: datetime,
        budget_seconds: float,
        basis: str,
        calendar: str,
        calendar_version: str,
        policy_version: str,
        escalate_to_tier: int | None,
        reason: str,
        recomputed_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = replace(
            self.clocks[clock_id],
            budget=timedelta(seconds=budget_seconds),
            measure=basis,
            calendar=calendar,
            escalate_to_tier=escalate_to_tier,
            deadline=deadline,
            warned=(),
            cause=self._this_event(),
            policy_version=policy_version,
            calendar_version=calendar_version,
        )

    @event("ClockWithdrawn")
    def _clock_withdrawn(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        policy_version: str,
        calendar_version: str,
        clock: str,
        rule_id: str,
        reason: str,
        withdrawn_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = replace(
            self.clocks[clock_id], state="withdrawn", settled_at=withdrawn_at
        )

    # Met, paused, resumed --------------------------------------------------------------

    def _meet(self, event_type: str, data: Mapping[str, Any], at: datetime, policy: SlaPolicy):
        for clock in list(self.clocks.values()):
            if clock.state not in {"running", "paused", "breached"}:
                continue
            matchers = policy.met_by.get(clock.clock, [])
            if any(matcher.matches(event_type, data) for matcher in matchers):
                self._clock_met(
                    case_id=self.case_id,
                    clock_id=clock.clock_id,
                    policy_version=clock.policy_version,
                    calendar_version=clock.calendar_version,
                    clock=clock.clock.value,
                    rule_id=clock.rule_id,
                    deadline=clock.deadline,
                    met_at=at,
                    on_time=at <= clock.deadline,
                    met_by=event_type,
                    correlation_id=self.correlation_id,
                    causation_id=self.cause,
                )

    @event("ClockMet")
    def _clock_met(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        policy_version: str,
        calendar_version: str,
        clock: str,
        rule_id: str,
        deadline: datetime,
        met_at: datetime,
        on_time: bool,
        met_by: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = replace(
            self.clocks[clock_id], state="met", settled_at=met_at, on_time=on_time
        )

    def _pause_all(self, at: datetime, calendars: Mapping[str, BusinessCalendar]) -> None:
        for clock in list(self.clocks.values()):
            if clock.state == "running" and clock.pausable:
                used = clock.used_at(at, calendars[clock.calendar])
                self._clock_paused(
                    case_id=self.case_id,
                    clock_id=clock.clock_id,
                    policy_version=clock.policy_version,
                    calendar_version=clock.calendar_version,
                    clock=clock.clock.value,
                    paused_at=at,
                    used_seconds=int(used.total_seconds()),
                    correlation_id=self.correlation_id,
                    causation_id=self.cause,
                )

    @event("ClockPaused")
    def _clock_paused(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        policy_version: str,
        calendar_version: str,
        clock: str,
        paused_at: datetime,
        used_seconds: int,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = replace(
            self.clocks[clock_id],
            state="paused",
            stretch_from=None,
            used_before=timedelta(seconds=used_seconds),
        )

    def _resume_all(self, at: datetime, calendars: Mapping[str, BusinessCalendar]) -> None:
        for clock in list(self.clocks.values()):
            if clock.state == "paused":
                resumed = replace(clock, state="running", stretch_from=at)
                deadline = resumed.instant_used(clock.budget, calendars[clock.calendar])
                self._clock_resumed(
                    case_id=self.case_id,
                    clock_id=clock.clock_id,
                    policy_version=clock.policy_version,
                    calendar_version=clock.calendar_version,
                    clock=clock.clock.value,
                    resumed_at=at,
                    deadline=deadline,
                    correlation_id=self.correlation_id,
                    causation_id=self.cause,
                )

    @event("ClockResumed")
    def _clock_resumed(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        policy_version: str,
        calendar_version: str,
        clock: str,
        resumed_at: datetime,
        deadline: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = replace(
            self.clocks[clock_id],
            state="running",
            stretch_from=resumed_at,
            deadline=deadline,
            cause=self._this_event(),
        )

    # Timers -----------------------------------------------------------------------------

    def pending_timers(
        self, policy: SlaPolicy, calendars: Mapping[str, BusinessCalendar]
    ) -> list[Timer]:
        """What must fire next for each running clock: its warnings not yet given, its breach."""
        timers = []
        for clock in self.clocks.values():
            if clock.state != "running":
                continue
            calendar = calendars[clock.calendar]
            for fraction in policy.warning_fractions:
                if fraction not in clock.warned:
                    due = clock.instant_used(clock.budget * fraction, calendar)
                    timers.append(Timer(clock.clock_id, f"warning:{fraction}", due))
            timers.append(Timer(clock.clock_id, BREACH, clock.deadline))
        return timers

    def fire(self, timer: Timer, now: datetime, late_after: timedelta) -> bool:
        """Warns or breaches as the timer says, if the clock still calls for it."""
        clock = self.clocks.get(timer.clock_id)
        if clock is None or clock.state != "running":
            return False
        late = now - timer.due_at > late_after
        if timer.purpose == BREACH:
            if now < clock.deadline:
                return False
            self._clock_breached(
                case_id=self.case_id,
                clock_id=clock.clock_id,
                policy_version=clock.policy_version,
                calendar_version=clock.calendar_version,
                clock=clock.clock.value,
                rule_id=clock.rule_id,
                deadline=clock.deadline,
                breached_at=now,
                late=late,
                correlation_id=self.correlation_id,
                causation_id=clock.cause,
            )
            self._request_escalation(clock, now)
            return True
        fraction = float(timer.purpose.removeprefix("warning:"))
        if fraction in clock.warned or now < timer.due_at:
            return False
        self._clock_warning(
            case_id=self.case_id,
            clock_id=clock.clock_id,
            policy_version=clock.policy_version,
            calendar_version=clock.calendar_version,
            clock=clock.clock.value,
            rule_id=clock.rule_id,
            fraction=fraction,
            deadline=clock.deadline,
            warned_at=now,
            late=late,
            correlation_id=self.correlation_id,
            causation_id=clock.cause,
        )
        return True

    def _last_clock_event(self) -> UUID:
        return event_id(type(self).__name__, self.id, self.version)

    def _this_event(self) -> UUID:
        """Inside an event's handler: that event's id (the aggregate is one version behind)."""
        return event_id(type(self).__name__, self.id, self.version + 1)

    @event("ClockWarning")
    def _clock_warning(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        policy_version: str,
        calendar_version: str,
        clock: str,
        rule_id: str,
        fraction: float,
        deadline: datetime,
        warned_at: datetime,
        late: bool,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        current = self.clocks[clock_id]
        self.clocks[clock_id] = replace(
            current, warned=(*current.warned, fraction), cause=self._this_event()
        )

    @event("ClockBreached")
    def _clock_breached(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        policy_version: str,
        calendar_version: str,
        clock: str,
        rule_id: str,
        deadline: datetime,
        breached_at: datetime,
        late: bool,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.clocks[clock_id] = replace(
            self.clocks[clock_id], state="breached", settled_at=breached_at, on_time=False
        )

    def _request_escalation(self, clock: RunningClock, now: datetime) -> None:
        tier = self.facts.get("tier") or 1
        to_tier = clock.escalate_to_tier or min(tier + 1, 3)
        if to_tier <= tier:
            return
        self._escalation_requested(
            case_id=self.case_id,
            clock_id=clock.clock_id,
            rule_id=clock.rule_id,
            to_tier=to_tier,
            reason=f"{clock.clock.value} clock {clock.rule_id} breached at its deadline",
            requested_at=now,
            correlation_id=self.correlation_id,
            causation_id=self._last_clock_event(),
        )

    @event("EscalationRequested")
    def _escalation_requested(
        self,
        *,
        case_id: UUID,
        clock_id: UUID,
        rule_id: str,
        to_tier: int,
        reason: str,
        requested_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        pass

    # Initial contact ----------------------------------------------------------------------

    def attempt_contact(
        self,
        *,
        channels: list[str],
        reached: bool,
        note: str | None,
        attempted_by: str,
        now: datetime,
        policy: SlaPolicy,
        calendar: BusinessCalendar,
    ) -> None:
        """One initial-contact attempt: a new day each time, over every channel on file."""
        rules = policy.contact_attempts
        if self.contact_attempts_exhausted or len(self.attempts) >= rules.max_attempts:
            raise ContactAttemptRefused(
                f"all {rules.max_attempts} attempts are used", attempts=len(self.attempts)
            )
        today = now.astimezone(calendar.zone).date()
        if rules.distinct_days and any(
            earlier.astimezone(calendar.zone).date() == today for earlier in self.attempts
        ):
            raise ContactAttemptRefused("one attempt a day: the next one is on another day")
        missing = sorted(set(self.contact_kinds) - set(channels))
        if missing:
            raise ContactAttemptRefused(
                "an attempt uses every channel on file", missing_channels=missing
            )
        self.cause = None  # a person's action, not a reaction to an event
        self._contact_attempted(
            case_id=self.case_id,
            attempt=len(self.attempts) + 1,
            channels=sorted(set(channels)),
            reached=reached,
            note=note,
            attempted_by=attempted_by,
            attempted_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.cause,
        )
        self._meet(
            contract.ContactAttempted.TYPE, {"reached": reached, "channels": channels}, now, policy
        )
        if not reached and len(self.attempts) >= rules.max_attempts:
            self._contact_attempts_exhausted(
                case_id=self.case_id,
                attempts=len(self.attempts),
                rule_id=rules.flag_rule_id,
                flagged_at=now,
                correlation_id=self.correlation_id,
                causation_id=self._last_clock_event(),
            )

    @event("ContactAttempted")
    def _contact_attempted(
        self,
        *,
        case_id: UUID,
        attempt: int,
        channels: list[str],
        reached: bool,
        note: str | None,
        attempted_by: str,
        attempted_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.attempts = [*self.attempts, attempted_at]

    @event("ContactAttemptsExhausted")
    def _contact_attempts_exhausted(
        self,
        *,
        case_id: UUID,
        attempts: int,
        rule_id: str,
        flagged_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.contact_attempts_exhausted = True


publish(CaseClocks.ClockStarted, contract.ClockStarted)
publish(CaseClocks.ClockRecomputed, contract.ClockRecomputed)
publish(CaseClocks.ClockWithdrawn, contract.ClockWithdrawn)
publish(CaseClocks.ClockMet, contract.ClockMet)
publish(CaseClocks.ClockPaused, contract.ClockPaused)
publish(CaseClocks.ClockResumed, contract.ClockResumed)
publish(CaseClocks.ClockWarning, contract.ClockWarning)
publish(CaseClocks.ClockBreached, contract.ClockBreached)
publish(CaseClocks.EscalationRequested, contract.EscalationRequested)
publish(CaseClocks.ContactAttempted, contract.ContactAttempted)
publish(CaseClocks.ContactAttemptsExhausted, contract.ContactAttemptsExhausted)
