from datetime import datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

from casetrail.contracts.events import CaseTriaged, ClockKind
from casetrail.sla_timer.domain import Clock, plan_clocks, start_clock
from casetrail.sla_timer.policy import load_policy

POLICY = load_policy()
CALENDAR = POLICY.calendar.build()
NY = ZoneInfo("America/New_York")


def triaged(severity="S3", channel="email", case_type="General", opened=None):
    return CaseTriaged(
        case_id=uuid4(),
        severity=severity,
        case_type=case_type,
        high_priority=False,
        tier=1,
        channel=channel,
        opened_at=opened or datetime(2026, 11, 23, 10, tzinfo=NY),
        rules_fired=("SEV-DEFAULT-S3",),
        policy_version="test",
    )


def plans(case):
    return {plan.clock: plan for plan in plan_clocks(case, POLICY, CALENDAR)}


def test_email_first_response_is_four_business_hours():
    first = plans(triaged())[ClockKind.FIRST_RESPONSE]
    assert first.rule_id == "FR-CHANNEL-email"
    assert first.deadline == datetime(2026, 11, 23, 14, tzinfo=NY)


def test_s1_first_response_runs_24_7_and_beats_the_channel_target():
    saturday_night = datetime(2026, 11, 21, 23, tzinfo=NY)
    first = plans(triaged("S1", opened=saturday_night))[ClockKind.FIRST_RESPONSE]
    assert first.rule_id == "FR-SEV-S1"
    assert first.deadline == saturday_night + timedelta(minutes=15)


def test_the_tightest_resolution_rule_wins():
    resolution = plans(triaged("S3", channel="chat"))[ClockKind.RESOLUTION]
    # S3's 72 calendar hours end Thursday 10:00; General's 48 open hours, with Thanksgiving
    # closed, end the Monday after: the severity rule is tighter.
    assert resolution.rule_id == "RES-SEV-S3"
    assert resolution.deadline == datetime(2026, 11, 26, 10, tzinfo=NY)


def test_a_general_case_type_rule_wins_when_it_is_tighter():
    resolution = plans(triaged("S4", channel="chat"))[ClockKind.RESOLUTION]
    assert resolution.rule_id == "RES-TYPE-General"
    assert resolution.deadline == datetime(2026, 11, 30, 10, tzinfo=NY)


def test_a_clock_breaches_once_and_only_after_its_deadline():
    case = triaged()
    plan = plans(case)[ClockKind.FIRST_RESPONSE]
    clock = start_clock(case, plan, POLICY, uuid4(), uuid4())
    assert not clock.breach(plan.deadline - timedelta(seconds=1), timedelta(minutes=1))
    assert clock.breach(plan.deadline, timedelta(minutes=1))
    assert not clock.breach(plan.deadline + timedelta(hours=1), timedelta(minutes=1))
    breached = [e for e in clock.collect_events() if isinstance(e, Clock.Breached)]
    assert len(breached) == 1 and breached[0].late is False


def test_a_breach_fired_long_after_the_deadline_is_marked_late():
    case = triaged()
    plan = plans(case)[ClockKind.FIRST_RESPONSE]
    clock = start_clock(case, plan, POLICY, uuid4(), uuid4())
    clock.breach(plan.deadline + timedelta(hours=2), timedelta(minutes=1))
    assert clock.collect_events()[-1].late is True
