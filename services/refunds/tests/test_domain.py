from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest

from casetrail.contracts.events import RefundOutcome, RefundReason, UsageFacts
from casetrail.refunds.domain import (
    NotAwaitingReview,
    Refund,
    RefundFacts,
    ReviewNotPermitted,
    UnsupportedCurrency,
    decide_refund,
)
from casetrail.refunds.policy import load_policy

POLICY = load_policy()
NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
NO_USAGE = UsageFacts(logged_in=False, reports_pulled=False, build_it_used=False)
LOGGED_IN = UsageFacts(logged_in=True, reports_pulled=False, build_it_used=False)


def facts(reason=RefundReason.NOT_SATISFIED, amount=5_000, **overrides):
    values = {
        "amount_minor": amount,
        "currency": "USD",
        "reason": reason,
        "usage": NO_USAGE,
        "cancellation_evidence": False,
        "issue_resolved": False,
        "goodwill_declined": False,
        "threat": False,
        "charged_at": NOW - timedelta(days=3),
        "requested_at": NOW,
    }
    values.update(overrides)
    return RefundFacts(**values)


def test_dissatisfaction_refund_is_approved_with_a_downgrade_to_basic():
    decision = decide_refund(facts(), POLICY)
    assert decision.outcome is RefundOutcome.APPROVED
    assert decision.kind == "dissatisfaction" and decision.downgrade_to_basic
    assert decision.rules_fired == ("REF-DISSATISFACTION",)


def test_forgot_to_cancel_with_any_usage_gets_no_refund():
    decision = decide_refund(facts(RefundReason.FORGOT_TO_CANCEL, usage=LOGGED_IN), POLICY)
    assert decision.outcome is RefundOutcome.REFUSED
    assert decision.rules_fired == ("REF-FORGOT-USED",)


def test_forgot_to_cancel_without_usage_is_refunded_as_dissatisfaction():
    decision = decide_refund(facts(RefundReason.FORGOT_TO_CANCEL), POLICY)
    assert decision.outcome is RefundOutcome.APPROVED and decision.downgrade_to_basic


def test_a_resolved_technical_error_is_a_goodwill_refund_that_keeps_the_plan():
    decision = decide_refund(facts(RefundReason.TECHNICAL_ERROR, issue_resolved=True), POLICY)
    assert decision.kind == "goodwill" and not decision.downgrade_to_basic


def test_declined_goodwill_becomes_dissatisfaction_with_a_downgrade():
    decision = decide_refund(
        facts(RefundReason.TECHNICAL_ERROR, issue_resolved=True, goodwill_declined=True), POLICY
    )
    assert decision.kind == "dissatisfaction" and decision.downgrade_to_basic


def test_an_unresolved_technical_error_is_resolved_first():
    decision = decide_refund(facts(RefundReason.TECHNICAL_ERROR), POLICY)
    assert decision.outcome is RefundOutcome.PENDING_RESOLUTION


def test_failed_cancellation_with_evidence_is_refunded_with_a_plan_correction():
    decision = decide_refund(
        facts(RefundReason.CHARGED_AFTER_CANCEL, cancellation_evidence=True), POLICY
    )
    assert decision.outcome is RefundOutcome.APPROVED and decision.plan_correction


def test_refund_over_200_needs_supervisor():
    assert decide_refund(facts(amount=20_000), POLICY).outcome is RefundOutcome.APPROVED
    decision = decide_refund(facts(amount=20_001), POLICY)
    assert decision.outcome is RefundOutcome.PENDING_REVIEW
    assert decision.reviewer_role == "supervisor"
    assert "REF-REVIEW-OVER-LIMIT" in decision.rules_fired


def test_a_threat_needs_supervisor_review_whatever_the_amount():
    decision = decide_refund(facts(amount=100, threat=True), POLICY)
    assert decision.outcome is RefundOutcome.PENDING_REVIEW
    assert "REF-REVIEW-THREAT" in decision.rules_fired


def test_a_charge_older_than_the_window_is_refused():
    decision = decide_refund(facts(charged_at=NOW - timedelta(days=31)), POLICY)
    assert decision.outcome is RefundOutcome.REFUSED and decision.rules_fired == ("REF-WINDOW",)


def test_a_currency_without_policy_is_refused_clearly():
    with pytest.raises(UnsupportedCurrency):
        decide_refund(facts(currency="JPY"), POLICY)


def test_a_nod_credit_over_500_needs_leadership():
    decision = decide_refund(facts(amount=50_001, nod_case=True), POLICY)
    assert decision.reviewer_role == "leadership"
    assert "REF-NOD-LEADERSHIP" in decision.rules_fired
    assert decide_refund(facts(amount=50_001), POLICY).reviewer_role == "supervisor"


def held_refund(amount=25_000, nod_case=False, requested_by="agent-1"):
    case_facts = facts(amount=amount, nod_case=nod_case)
    refund = Refund(
        case_id=uuid4(), refund_id=uuid4(), amount={"amount_minor": amount, "currency": "USD"},
        reason="not_satisfied", usage=NO_USAGE.model_dump(), cancellation_evidence=False,
        issue_resolved=False, goodwill_declined=False, threat=False, charged_at=None,
        requested_by=requested_by, requested_at=NOW, request_fingerprint="f",
        correlation_id=uuid4(), causation_id=None,
    )  # fmt: skip
    refund.record_decision(decide_refund(case_facts, POLICY), POLICY.version, NOW)
    return refund


def test_only_a_supervisor_settles_a_refund_held_for_a_supervisor():
    refund = held_refund()
    with pytest.raises(ReviewNotPermitted):
        refund.review(approve=True, reviewer="lead-1", roles={"agent"}, reason="ok", now=NOW)
    refund.review(approve=True, reviewer="sup-1", roles={"supervisor"}, reason="ok", now=NOW)
    assert refund.outcome == "approved" and refund.reviewed_by == "sup-1"


def test_nobody_reviews_their_own_request():
    refund = held_refund(requested_by="sup-1")
    with pytest.raises(ReviewNotPermitted, match="own request"):
        refund.review(approve=True, reviewer="sup-1", roles={"supervisor"}, reason="x", now=NOW)


def test_a_nod_credit_held_for_leadership_refuses_a_supervisor():
    refund = held_refund(amount=60_000, nod_case=True)
    with pytest.raises(ReviewNotPermitted, match="leadership"):
        refund.review(approve=True, reviewer="sup-1", roles={"supervisor"}, reason="x", now=NOW)
    refund.review(approve=False, reviewer="vp-1", roles={"leadership"}, reason="no", now=NOW)
    assert refund.outcome == "refused"


def test_a_settled_refund_cannot_be_reviewed_again():
    refund = held_refund()
    refund.review(approve=True, reviewer="sup-1", roles={"supervisor"}, reason="ok", now=NOW)
    with pytest.raises(NotAwaitingReview):
        refund.review(approve=False, reviewer="sup-2", roles={"supervisor"}, reason="x", now=NOW)
