"""The refund decision tree (domain reference section 6): pure, rule by named rule."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.contracts.events import RefundOutcome, RefundReason, UsageFacts
from casetrail.refunds.policy import RefundPolicy
from casetrail.runtime.eventstore import event_id, publish
from casetrail.runtime.service import DomainError

FEATURE_OR_TECHNICAL = {
    RefundReason.TECHNICAL_ERROR,
    RefundReason.UNABLE_TO_USE_BUILD_IT,
    RefundReason.REPORTS_NOT_UPDATED,
}
CANCELLATION_FAILED = {RefundReason.CHARGED_AFTER_CANCEL, RefundReason.CANCELLED_ON_DUE_DATE}


class NotAwaitingReview(DomainError):
    status_code = 409
    code = "not_awaiting_review"


class ReviewNotPermitted(DomainError):
    status_code = 403
    code = "review_not_permitted"


class UnsupportedCurrency(DomainError):
    status_code = 422
    code = "unsupported_currency"


@dataclass(frozen=True)
class RefundFacts:
    amount_minor: int
    currency: str
    reason: RefundReason
    usage: UsageFacts
    cancellation_evidence: bool
    issue_resolved: bool
    goodwill_declined: bool
    threat: bool
    charged_at: datetime | None
    requested_at: datetime
    nod_case: bool = False


@dataclass(frozen=True)
class Decision:
    outcome: RefundOutcome
    kind: str | None
    downgrade_to_basic: bool
    plan_correction: bool
    reviewer_role: str | None
    rules_fired: tuple[str, ...]


def _policy_decision(facts: RefundFacts) -> Decision:
    """What the playbook says, before approval limits."""
    approved, refused = RefundOutcome.APPROVED, RefundOutcome.REFUSED
    if facts.reason in FEATURE_OR_TECHNICAL:
        if not facts.issue_resolved:
            return Decision(
                RefundOutcome.PENDING_RESOLUTION, None, False, False, None, ("REF-RESOLVE-FIRST",)
            )
        if facts.goodwill_declined:
            return Decision(
                approved, "dissatisfaction", True, False, None, ("REF-GOODWILL-DECLINED",)
            )
        # The specific rule wins: goodwill keeps the customer's plan.
        return Decision(approved, "goodwill", False, False, None, ("REF-GOODWILL",))
    if facts.reason is RefundReason.FORGOT_TO_CANCEL:
        if facts.usage.any_usage:
            return Decision(refused, None, True, False, None, ("REF-FORGOT-USED",))
        return Decision(approved, "dissatisfaction", True, False, None, ("REF-FORGOT-UNUSED",))
    if facts.reason in CANCELLATION_FAILED:
        if facts.cancellation_evidence:
            return Decision(approved, "dissatisfaction", True, True, None, ("REF-CANCEL-FAILED",))
        return Decision(
            RefundOutcome.PENDING_REVIEW,
            "dissatisfaction",
            True,
            False,
            "supervisor",
            ("REF-CANCEL-NO-EVIDENCE",),
        )
    return Decision(approved, "dissatisfaction", True, False, None, ("REF-DISSATISFACTION",))


def decide_refund(facts: RefundFacts, policy: RefundPolicy) -> Decision:
    limits = policy.currencies.get(facts.currency)
    if limits is None:
        raise UnsupportedCurrency(
            f"no refund policy for {facts.currency}", supported=sorted(policy.currencies)
        )
    window = timedelta(days=policy.refund_window_days)
    if facts.charged_at is not None and facts.requested_at - facts.charged_at > window:
        return Decision(RefundOutcome.REFUSED, None, True, False, None, ("REF-WINDOW",))
    decision = _policy_decision(facts)
    if decision.outcome is not RefundOutcome.APPROVED:
        return decision
    review_rules = []
    reviewer = "supervisor"
    if facts.amount_minor > limits.supervisor_review_over_minor:
        review_rules.append("REF-REVIEW-OVER-LIMIT")
    if facts.threat:
        review_rules.append("REF-REVIEW-THREAT")
    if facts.nod_case and facts.amount_minor > limits.nod_leadership_over_minor:
        review_rules.append("REF-NOD-LEADERSHIP")
        reviewer = "leadership"
    if review_rules:
        return Decision(
            RefundOutcome.PENDING_REVIEW,
            decision.kind,
            decision.downgrade_to_basic,
            decision.plan_correction,
            reviewer,
            decision.rules_fired + tuple(review_rules),
        )
    return decision


class Refund(Aggregate):
    """One refund request on a case, and the decision the policy made on it."""

    @staticmethod
    def create_id(refund_id: UUID) -> UUID:
        return refund_id

    @event("Requested")
    def __init__(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        amount: dict[str, Any],
        reason: str,
        usage: dict[str, Any],
        cancellation_evidence: bool,
        issue_resolved: bool,
        goodwill_declined: bool,
        threat: bool,
        charged_at: datetime | None,
        requested_by: str,
        requested_at: datetime,
        request_fingerprint: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.case_id = case_id
        self.amount = amount
        self.reason = reason
        self.requested_by = requested_by
        self.requested_at = requested_at
        self.request_fingerprint = request_fingerprint
        self.correlation_id = correlation_id
        self.outcome: str | None = None
        self.reviewer_role: str | None = None
        self.rules_fired: list[str] = []
        self.reviewed_by: str | None = None

    def record_decision(self, decision: Decision, policy_version: str, now: datetime) -> None:
        self._decided(
            case_id=self.case_id,
            refund_id=self.id,
            outcome=decision.outcome.value,
            kind=decision.kind,
            downgrade_to_basic=decision.downgrade_to_basic,
            plan_correction=decision.plan_correction,
            reviewer_role=decision.reviewer_role,
            rules_fired=list(decision.rules_fired),
            policy_version=policy_version,
            decided_at=now,
            correlation_id=self.correlation_id,
            causation_id=event_id(type(self).__name__, self.id, 1),
        )

    @event("Decided")
    def _decided(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        outcome: str,
        kind: str | None,
        downgrade_to_basic: bool,
        plan_correction: bool,
        reviewer_role: str | None,
        rules_fired: list[str],
        policy_version: str,
        decided_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.outcome = outcome
        self.reviewer_role = reviewer_role
        self.rules_fired = rules_fired

    def review(
        self, *, approve: bool, reviewer: str, roles: set[str], reason: str, now: datetime
    ) -> None:
        """A supervisor (or, where the policy says so, leadership) settles a held refund;
        never the person who asked for it."""
        if self.outcome != RefundOutcome.PENDING_REVIEW.value:
            raise NotAwaitingReview("this refund is not waiting for a review", outcome=self.outcome)
        assert self.reviewer_role is not None
        if self.reviewer_role not in roles:
            raise ReviewNotPermitted(
                f"this refund needs a {self.reviewer_role}'s review",
                required_role=self.reviewer_role,
            )
        if reviewer == self.requested_by:
            raise ReviewNotPermitted("nobody reviews their own request", required_role=None)
        self._reviewed(
            case_id=self.case_id,
            refund_id=self.id,
            approved=approve,
            reviewed_by=reviewer,
            reviewer_role=self.reviewer_role,
            reason=reason,
            reviewed_at=now,
            correlation_id=self.correlation_id,
            causation_id=event_id(type(self).__name__, self.id, 2),
        )

    @event("Reviewed")
    def _reviewed(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        approved: bool,
        reviewed_by: str,
        reviewer_role: str,
        reason: str,
        reviewed_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.outcome = (RefundOutcome.APPROVED if approved else RefundOutcome.REFUSED).value
        self.reviewed_by = reviewed_by


publish(Refund.Requested, contract.RefundRequested)
publish(Refund.Decided, contract.RefundDecided)
publish(Refund.Reviewed, contract.RefundReviewed)
