"""QA sampling (section 7): every escalation and critical flow, 5% of the rest at random,
reproducibly; scorecards only for sampled cases, never by whoever worked the case."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import NAMESPACE_URL, uuid4, uuid5

import pytest
from pydantic import SecretStr, ValidationError

from casetrail.contracts.events import CaseOpened, QaSampleReason
from casetrail.triage import casework, quality
from casetrail.triage.assignment import AssignmentDecision, AssignmentKind, Requirement
from casetrail.triage.domain import triage
from casetrail.triage.lifecycle import Status
from casetrail.triage.policy import QaPolicy, load_policy

POLICY = load_policy()
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
SCORECARD = casework.QaScorecard(5, 4, 5, 4, "clear and complete")


def handled_case(subject: str = "Question about my statement", case_id=None):
    opened = CaseOpened(
        case_id=case_id or uuid4(),
        channel="email",
        customer_ref="acct-1",
        subject=subject,
        description="Please explain.",
        opened_at=NOW,
    )
    case = triage(opened, POLICY, uuid4(), uuid4())
    casework.assign(case, decision_for(case), assigned_by="triage", reason=None, now=NOW)
    resolve(case)
    return case


def decision_for(case) -> AssignmentDecision:
    return AssignmentDecision(
        primary="agent-1",
        partner=None,
        team="complaints",
        kind=AssignmentKind.TASK,
        requirement=Requirement(tier=case.tier),
        rules_fired=("ASSIGN-LEAST-LOADED",),
    )


def resolve(case) -> None:
    for status in (Status.ACKNOWLEDGED, Status.RESOLVED):
        casework.change_status(
            case,
            status,
            POLICY,
            changed_by="agent-1",
            reason=None,
            customer_confirmed=True,
            now=NOW,
        )


def sampled_events(case):
    return [e for e in case.collect_events() if isinstance(e, type(case).QaSampled)]


def test_the_draw_is_the_same_for_the_same_case_and_seed_and_differs_by_seed():
    ids = [uuid5(NAMESPACE_URL, f"casetrail:qa-seed:{n}") for n in range(50)]
    other = POLICY.qa.model_copy(update={"seed": SecretStr("another-seed-entirely")})
    ours = [quality.draw_ppm(POLICY.qa, i) for i in ids]
    assert ours == [quality.draw_ppm(POLICY.qa, i) for i in ids]
    assert ours != [quality.draw_ppm(other, i) for i in ids]


def test_about_five_percent_of_ordinary_cases_are_drawn():
    ids = [uuid5(NAMESPACE_URL, f"casetrail:qa:{n}") for n in range(20_000)]
    drawn = sum(quality.on_resolution(POLICY.qa, i, "S3", "General") is not None for i in ids)
    assert 0.045 < drawn / len(ids) < 0.055


def test_critical_flows_are_always_sampled():
    for severity, case_type in (("S1", "General"), ("S3", "Regulatory"), ("S4", "Legal")):
        selection = quality.on_resolution(POLICY.qa, uuid4(), severity, case_type)
        assert selection is not None and selection.reason is QaSampleReason.CRITICAL


def test_a_policy_sampling_less_than_five_percent_is_refused():
    raw = POLICY.qa.model_dump() | {"seed": "casetrail-qa-test", "random_rate_ppm": 49_999}
    with pytest.raises(ValidationError):
        QaPolicy.model_validate(raw)


def test_an_escalated_case_is_sampled_once_even_when_resolved_later():
    opened = CaseOpened(
        case_id=uuid4(),
        channel="email",
        customer_ref="acct-2",
        subject="Statement",
        description="Why this fee?",
        opened_at=NOW,
    )
    case = triage(opened, POLICY, uuid4(), uuid4())
    casework.escalate(
        case, POLICY, to_tier=3, reason="breach", escalated_by="sla-timer", rule_id="ESC-X", now=NOW
    )
    assert case.qa_sampled == "escalation"
    casework.assign(case, decision_for(case), assigned_by="triage", reason=None, now=NOW)
    resolve(case)
    assert [(e.reason, e.rule_id) for e in sampled_events(case)] == [
        ("escalation", "QA-ESCALATION")
    ]


def test_a_random_draw_is_recorded_with_the_seed_named_not_revealed():
    for n in range(2000):
        case_id = uuid5(NAMESPACE_URL, f"casetrail:qa-random:{n}")
        if quality.on_resolution(POLICY.qa, case_id, "S3", "General"):
            break
    case = handled_case(case_id=case_id)
    [sampled] = sampled_events(case)
    assert sampled.reason == "random"
    assert sampled.draw_ppm == quality.draw_ppm(POLICY.qa, case_id) < sampled.rate_ppm
    assert sampled.seed_id == quality.seed_id(POLICY.qa)
    assert POLICY.qa.seed.get_secret_value() not in sampled.seed_id


def test_scorecards_need_a_sample_and_a_reviewer_who_did_not_work_the_case():
    critical = handled_case("Payment failed", case_id=uuid4())
    assert critical.qa_sampled == "critical"
    with pytest.raises(casework.OwnCaseReview):
        casework.score_qa(critical, SCORECARD, reviewer="agent-1", scorecard_id=uuid4(), now=NOW)
    casework.score_qa(critical, SCORECARD, reviewer="supervisor-9", scorecard_id=uuid4(), now=NOW)
    assert critical.qa_scorecards == 1

    for n in range(2000):
        case_id = uuid5(NAMESPACE_URL, f"casetrail:qa-unsampled:{n}")
        if quality.on_resolution(POLICY.qa, case_id, "S3", "General") is None:
            break
    ordinary = handled_case(case_id=case_id)
    assert ordinary.qa_sampled is None
    with pytest.raises(casework.NotSampledForQa):
        casework.score_qa(
            ordinary, SCORECARD, reviewer="supervisor-9", scorecard_id=uuid4(), now=NOW
        )
