"""The refund and credit workflows as aggregates: events in order, approvals, payout once."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from casetrail.contracts.events import CaseType, RefundReason, UsageFacts
from casetrail.refunds.decision import (
    CreditFacts,
    decide_credit,
    decide_package_restoration,
    decide_refund,
)
from casetrail.refunds.domain import (
    ApprovalNotPermitted,
    Credit,
    NoGoodwillOffer,
    NotAwaitingApproval,
    Refund,
)
from casetrail.refunds.policy import load_policy

POLICY = load_policy()
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
NO_USAGE = UsageFacts(logged_in=False, reports_pulled=False, build_it_used=False)


def a_refund(amount=5_000, reason=RefundReason.NOT_SATISFIED, **facts) -> Refund:
    values = {
        "technical_fault": False,
        "issue_resolved": False,
        "goodwill_declined": False,
        "threat": False,
        "case_type": CaseType.GENERAL.value,
    }
    values.update(facts)
    refund = Refund(
        case_id=uuid4(),
        refund_id=uuid4(),
        amount={"amount_minor": amount, "currency": "USD"},
        reason=reason.value,
        usage=NO_USAGE.model_dump(),
        cancellation_evidence=False,
        evidence=[],
        plan="Premium",
        charged_at=NOW - timedelta(days=3),
        requested_by="agent-1",
        requested_at=NOW,
        request_fingerprint="f",
        correlation_id=uuid4(),
        causation_id=None,
        **values,
    )
    refund.decide(decide_refund(refund.facts(), POLICY), POLICY.version, NOW)
    return refund


def event_names(aggregate) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def test_a_dissatisfaction_refund_downgrades_first_and_is_ready_to_pay():
    refund = a_refund()
    assert event_names(refund) == ["Requested", "DowngradeTriggered", "PathDecided"]
    assert refund.ready_to_pay


def test_a_resolved_fault_offers_goodwill_and_keeps_the_plan():
    refund = a_refund(
        reason=RefundReason.TECHNICAL_ERROR, technical_fault=True, issue_resolved=True
    )
    assert event_names(refund) == ["Requested", "PathDecided", "GoodwillOffered"]
    assert not refund.ready_to_pay
    refund.accept_goodwill("agent-1", NOW)
    assert refund.ready_to_pay and not refund.downgraded


def test_declined_goodwill_is_decided_again_as_dissatisfaction_with_the_downgrade():
    refund = a_refund(
        reason=RefundReason.TECHNICAL_ERROR, technical_fault=True, issue_resolved=True
    )
    refund.collect_events()
    redecided = decide_refund(refund.facts(goodwill_declined=True), POLICY)
    refund.decline_goodwill("agent-1", redecided, POLICY.version, NOW)
    assert event_names(refund) == ["GoodwillDeclined", "DowngradeTriggered", "PathDecided"]
    assert refund.path == "dissatisfaction" and refund.ready_to_pay
    with pytest.raises(NoGoodwillOffer):
        refund.accept_goodwill("agent-1", NOW)


def test_over_200_waits_for_a_supervisor_who_did_not_ask():
    refund = a_refund(amount=20_001)
    assert event_names(refund)[-1] == "ApprovalRequired"
    assert refund.awaiting == ["supervisor"] and not refund.ready_to_pay
    with pytest.raises(ApprovalNotPermitted):
        refund.approve("agent-1", {"supervisor"}, "mine", NOW)  # four eyes
    with pytest.raises(ApprovalNotPermitted):
        refund.approve("agent-2", {"agent"}, "not a supervisor", NOW)
    refund.approve("sup-1", {"supervisor"}, "checked", NOW)
    assert refund.ready_to_pay
    with pytest.raises(NotAwaitingApproval):
        refund.reject("sup-2", {"supervisor"}, "too late", NOW)


def test_a_rejected_refund_is_never_paid():
    refund = a_refund(amount=30_000)
    refund.reject("sup-1", {"supervisor"}, "no grounds", NOW)
    assert refund.status == "rejected" and not refund.ready_to_pay


def test_a_refund_is_issued_once_and_replays_to_the_same_state():
    refund = a_refund()
    refund.issue(uuid4(), NOW)
    assert refund.status == "issued"
    with pytest.raises(AssertionError):
        refund.issue(uuid4(), NOW)
    replayed = None
    for domain_event in refund.collect_events():
        replayed = domain_event.mutate(replayed)
    assert replayed is not None
    assert (replayed.status, replayed.payout_id) == (refund.status, refund.payout_id)


def test_forgot_to_cancel_after_use_records_the_downgrade_and_pays_nothing():
    refund = a_refund(reason=RefundReason.FORGOT_TO_CANCEL)
    refund.collect_events()
    used = Refund(
        case_id=uuid4(),
        refund_id=uuid4(),
        amount={"amount_minor": 1_000, "currency": "USD"},
        reason=RefundReason.FORGOT_TO_CANCEL.value,
        usage=NO_USAGE.model_copy(update={"logged_in": True}).model_dump(),
        cancellation_evidence=False,
        evidence=[],
        technical_fault=False,
        issue_resolved=False,
        goodwill_declined=False,
        threat=False,
        plan="Basic",
        case_type="General",
        charged_at=NOW - timedelta(days=3),
        requested_by="agent-1",
        requested_at=NOW,
        request_fingerprint="f",
        correlation_id=uuid4(),
        causation_id=None,
    )
    used.decide(decide_refund(used.facts(), POLICY), POLICY.version, NOW)
    assert event_names(used) == ["Requested", "DowngradeTriggered", "PathDecided"]
    assert used.path == "no_refund" and not used.ready_to_pay


def a_credit(amount: int, case_type=CaseType.GENERAL, kind="credit") -> Credit:
    if kind == "credit":
        decision = decide_credit(
            CreditFacts(
                amount_minor=amount,
                currency="USD",
                case_type=case_type,
                justification="billing error",
                threat=False,
            ),
            POLICY,
        )
    else:
        decision = decide_package_restoration("loyal since 2015")
    credit = Credit(
        case_id=uuid4(),
        refund_id=uuid4(),
        kind=kind,
        amount={"amount_minor": amount, "currency": "USD"} if kind == "credit" else None,
        package="Legacy Gold" if kind != "credit" else None,
        justification="billing error",
        threat=False,
        reasons=list(decision.reasons),
        approvals=[
            {"approver": n.approver.value, "rule_id": n.rule_id, "reason": n.reason}
            for n in decision.approvals
        ],
        requested_by="agent-1",
        requested_at=NOW,
        request_fingerprint="f",
        correlation_id=uuid4(),
        causation_id=None,
    )
    credit.require(decision.approvals, NOW)
    return credit


def test_an_agent_credit_within_the_limit_is_granted_without_approval():
    credit = a_credit(30_000)
    assert credit.ready_to_pay
    credit.grant(uuid4(), NOW)
    assert event_names(credit) == ["Requested", "Granted"]


def test_a_nod_credit_over_500_waits_for_leadership():
    credit = a_credit(50_001, CaseType.NOD)
    assert "leadership" in credit.awaiting
    with pytest.raises(ApprovalNotPermitted):
        credit.approve("sup-1", {"agent"}, "ok", NOW)


def test_a_grandfathered_package_is_restored_only_by_a_manager():
    credit = a_credit(0, kind="package_restoration")
    assert credit.awaiting == ["manager"]
    with pytest.raises(ApprovalNotPermitted):
        credit.approve("sup-1", {"supervisor"}, "ok", NOW)
    credit.approve("mgr-1", {"manager"}, "loyal customer", NOW)
    assert credit.ready_to_pay
