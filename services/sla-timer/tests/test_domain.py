"""A case's clocks through a simulated week, moved by an injected clock: pure, no I/O."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from casetrail.contracts import events as ev
from casetrail.sla_timer.domain import CaseClocks, ContactAttemptRefused, advanced, measured
from casetrail.sla_timer.policy import load_policy
from casetrail.sla_timer.rules import calendars_of

POLICY = load_policy()
CALENDARS = calendars_of(POLICY)
NY = ZoneInfo("America/New_York")
MONDAY_10 = datetime(2026, 11, 16, 10, tzinfo=NY)  # a week without public holidays
LATE_AFTER = timedelta(seconds=POLICY.late_after_seconds)


def ny(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NY)


class Case:
    """One case's clocks fed with contract events, as the consumer would."""

    def __init__(self, channel="email", severity="S3", case_type="General", **source):
        self.case_id = uuid4()
        self.clocks = CaseClocks(case_id=self.case_id, correlation_id=uuid4())
        self.tell(
            ev.CaseOpened(
                case_id=self.case_id,
                channel=channel,
                customer_ref="c-1",
                subject="Billing",
                description="charged twice",
                opened_at=MONDAY_10,
                source=source,
            ),
            MONDAY_10,
        )
        self.triage(severity, case_type, channel)

    def triage(self, severity: str, case_type: str = "General", channel="email", tier=1):
        self.tell(
            ev.CaseTriaged(
                case_id=self.case_id,
                severity=severity,
                case_type=case_type,
                high_priority=severity in ("S1", "S2"),
                tier=tier,
                channel=channel,
                opened_at=MONDAY_10,
                rules_fired=(),
                policy_version="test",
            ),
            MONDAY_10,
        )

    def tell(self, data: ev.EventData, at: datetime) -> None:
        self.clocks.observe(data.TYPE, data, at, uuid4(), POLICY, CALENDARS)

    def status(self, from_status: str, to_status: str, at: datetime) -> None:
        self.tell(
            ev.CaseStatusChanged(
                case_id=self.case_id,
                from_status=from_status,
                to_status=to_status,
                changed_by="agent-1",
                changed_at=at,
            ),
            at,
        )

    def clock(self, rule_id: str):
        return next(c for c in self.clocks.clocks.values() if c.rule_id == rule_id)

    def run_until(self, now: datetime) -> list[str]:
        """Fires every timer due by `now`, in order, as the scheduler would."""
        fired = []
        while due := sorted(
            (t for t in self.clocks.pending_timers(POLICY, CALENDARS) if t.due_at <= now),
            key=lambda t: t.due_at,
        ):
            timer = due[0]
            assert self.clocks.fire(timer, max(now, timer.due_at), LATE_AFTER)
            fired.append(f"{self.clocks.clocks[timer.clock_id].rule_id}:{timer.purpose}")
        return fired

    def events(self) -> list[str]:
        return [type(e).__name__ for e in self.clocks.collect_events()]


def test_an_email_case_runs_every_clock_that_applies_each_on_its_rule():
    case = Case()
    started = {c.rule_id: c for c in case.clocks.clocks.values()}
    assert {"FR-CHANNEL-email", "FR-SEV-S3", "RES-SEV-S3", "RES-TYPE-General"} <= set(started)
    # Four business hours from Monday 10:00 in New York.
    assert started["FR-CHANNEL-email"].deadline == ny(16, 14)
    assert all(c.state == "running" for c in started.values())


def test_a_simulated_week_warns_at_75_and_90_percent_then_breaches_and_asks_to_escalate():
    case = Case()
    case.clocks.collect_events()
    fired = case.run_until(ny(16, 13, 59))
    assert fired[:2] == ["FR-CHANNEL-email:warning:0.75", "FR-CHANNEL-email:warning:0.9"]
    assert "FR-CHANNEL-email:breach" not in fired
    fired = case.run_until(ny(16, 14))
    assert fired == ["FR-CHANNEL-email:breach"]
    names = case.events()
    assert names[-2:] == ["ClockBreached", "EscalationRequested"]
    # The rest of the week: every remaining clock warns twice and breaches once, in order.
    rest = case.run_until(ny(23, 9))
    breaches = [f for f in rest if f.endswith(":breach")]
    assert len(breaches) == len(set(breaches))
    assert case.clock("RES-TYPE-General").state == "breached"


def test_the_first_agent_response_meets_the_first_response_clocks_on_time():
    case = Case()
    case.tell(
        ev.WorklogEntryAdded(
            case_id=case.case_id,
            entry_id=uuid4(),
            at=ny(16, 11),
            issue_type="Billing",
            action="Called back",
            outcome="Explained",
            author="agent-1",
        ),
        ny(16, 11),
    )
    met = case.clock("FR-CHANNEL-email")
    assert (met.state, met.on_time) == ("met", True)
    assert case.clock("RES-SEV-S3").state == "running"
    assert all(t.clock_id != met.clock_id for t in case.clocks.pending_timers(POLICY, CALENDARS))


def test_waiting_on_the_customer_pauses_contractual_clocks_and_resuming_moves_the_deadline():
    case = Case(channel="regulatory", severity="S3", case_type="Regulatory", agency="CFPB")
    regulatory = case.clock("CFPB-RESPONSE-15CD")
    resolution = case.clock("RES-SEV-S3")
    case.status("Pending On", "Awaiting Customer", ny(16, 11))
    assert case.clock("RES-SEV-S3").state == "paused"
    assert case.clock("CFPB-RESPONSE-15CD").state == "running", "regulatory clocks never pause"
    # The customer answers the next morning; the clock had used one hour (10:00-11:00).
    case.status("Awaiting Customer", "Pending On", ny(17, 9))
    resumed = case.clock("RES-SEV-S3")
    assert resumed.state == "running"
    calendar = CALENDARS[resumed.calendar]
    used = measured(calendar, resumed.measure, MONDAY_10, ny(16, 11))
    assert used == timedelta(hours=1)
    assert resumed.deadline == advanced(calendar, resumed.measure, ny(17, 9), resumed.budget - used)
    assert resumed.deadline > resolution.deadline
    assert case.clock("CFPB-RESPONSE-15CD").deadline == regulatory.deadline


def test_a_severity_change_starts_the_new_rules_and_withdraws_the_old():
    case = Case(severity="S3")
    case.triage("S1")
    assert case.clock("FR-SEV-S1").state == "running"
    assert case.clock("FR-SEV-S3").state == "withdrawn"
    assert case.clock("ESC-HIGH-SEV-120").deadline == MONDAY_10 + timedelta(minutes=120)


def test_a_high_severity_case_unresolved_after_120_minutes_goes_to_tier_2():
    case = Case(severity="S1")
    case.clocks.collect_events()
    case.run_until(MONDAY_10 + timedelta(minutes=120))
    requested = [
        e for e in case.clocks.collect_events() if type(e).__name__ == "EscalationRequested"
    ]
    assert {(e.rule_id, e.to_tier) for e in requested} >= {("ESC-HIGH-SEV-120", 2)}


def test_a_timer_fires_once_even_when_delivered_twice():
    case = Case()
    timer = next(
        t
        for t in case.clocks.pending_timers(POLICY, CALENDARS)
        if t.purpose == "breach" and case.clocks.clocks[t.clock_id].rule_id == "FR-CHANNEL-email"
    )
    assert case.clocks.fire(timer, ny(16, 14), LATE_AFTER)
    assert not case.clocks.fire(timer, ny(16, 14, 5), LATE_AFTER)


def test_a_timer_that_fires_after_a_downtime_is_marked_late():
    case = Case()
    case.clocks.collect_events()
    timer = next(
        t
        for t in case.clocks.pending_timers(POLICY, CALENDARS)
        if t.purpose == "breach" and case.clocks.clocks[t.clock_id].rule_id == "FR-CHANNEL-email"
    )
    case.clocks.fire(timer, ny(16, 18), LATE_AFTER)
    breach = case.clocks.collect_events()[0]
    assert breach.late is True


def test_a_new_policy_is_repaired_in_as_corrections_naming_its_version():
    case = Case()
    before = case.clock("FR-CHANNEL-email").deadline
    text = POLICY.model_dump(mode="json")
    for rule in text["rules"]:
        if rule["rule_id"] == "FR-CHANNEL-email":
            rule["minutes"] = 120
    text["version"] = "repair-test"
    newer = type(POLICY).model_validate(text)
    case.clocks.collect_events()
    case.clocks.reconcile(newer, calendars_of(newer), ny(16, 10, 30), reason="repair")
    corrections = case.clocks.collect_events()
    assert [type(e).__name__ for e in corrections] == ["ClockRecomputed"]
    assert corrections[0].policy_version == "repair-test"
    assert corrections[0].previous_deadline == before
    assert case.clock("FR-CHANNEL-email").deadline == ny(16, 12)


def test_replaying_the_stored_events_rebuilds_the_same_clocks():
    case = Case()
    case.run_until(ny(18, 12))
    replayed = None
    for domain_event in case.clocks.collect_events():
        replayed = domain_event.mutate(replayed)
    assert replayed is not None and replayed.clocks == case.clocks.clocks


def attempt(case: Case, at: datetime, channels=("email",), reached=False) -> None:
    case.clocks.attempt_contact(
        channels=list(channels),
        reached=reached,
        note=None,
        attempted_by="agent-1",
        now=at,
        policy=POLICY,
        calendar=CALENDARS["us-business"],
    )


def test_three_failed_contact_attempts_on_different_days_flag_the_case():
    case = Case()
    attempt(case, ny(16, 11))
    assert case.clock("IC-TYPE-General").state == "met"
    with pytest.raises(ContactAttemptRefused):
        attempt(case, ny(16, 15))  # the same day
    with pytest.raises(ContactAttemptRefused):
        attempt(case, ny(17, 11), channels=("phone",))  # e-mail is on file
    attempt(case, ny(17, 11))
    assert not case.clocks.contact_attempts_exhausted
    attempt(case, ny(18, 11))
    assert case.clocks.contact_attempts_exhausted
    with pytest.raises(ContactAttemptRefused):
        attempt(case, ny(19, 11))


def test_the_account_facts_from_intake_choose_plan_market_and_regime_clocks():
    case = Case(channel="email", plan="Premium", market="GB", regimes=["FCA_DISP"])
    premium = case.clock("FR-PLAN-Premium")
    assert premium.calendar == "uk-business"
    assert case.clock("FCA-DISP-8W").deadline == CALENDARS["uk-business"].add_calendar_days(
        MONDAY_10, 56
    )


def test_a_market_the_policy_does_not_know_runs_the_default_markets_clocks():
    case = Case(channel="email", market="FR", regimes=["NOT_A_REGIME"])
    assert case.clock("FR-CHANNEL-email").calendar == "us-business"


def test_every_clock_event_names_the_policy_and_calendar_versions_it_used():
    case = Case()
    case.run_until(ny(20, 20))
    published = [e for e in case.clocks.collect_events() if type(e).__name__.startswith("Clock")]
    assert {type(e).__name__ for e in published} >= {
        "ClockStarted",
        "ClockWarning",
        "ClockBreached",
    }
    assert {e.policy_version for e in published} == {POLICY.version}
    assert all(e.calendar_version for e in published)
