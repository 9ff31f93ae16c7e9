from datetime import UTC, datetime, timedelta

import pytest

from casetrail.contracts.events import RefundOutcome, RefundReason, UsageFacts
from casetrail.refunds.domain import RefundFacts, UnsupportedCurrency, decide_refund
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
