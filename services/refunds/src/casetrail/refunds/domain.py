"""Refunds and credits as aggregates: each request, its decision, its approvals, its payout.

The decision itself is `decision.py`'s pure policy; these aggregates record what it said
and guard the workflow: nobody approves their own request, nothing pays out before its
approvals, and nothing pays out twice.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.contracts.events import (
    Approver,
    CaseType,
    RefundPath,
    RefundReason,
    UsageFacts,
)
from casetrail.refunds.decision import ApprovalNeed, EvidenceKind, RefundDecision, RefundFacts
from casetrail.runtime.eventstore import event_id, publish
from casetrail.runtime.service import DomainError

BASIC_PLAN = "Basic"


class NotAwaitingApproval(DomainError):
    status_code = 409
    code = "not_awaiting_approval"


class ApprovalNotPermitted(DomainError):
    status_code = 403
    code = "approval_not_permitted"


class NoGoodwillOffer(DomainError):
    status_code = 409
    code = "no_goodwill_offer"


def _approval_record(needs: tuple[ApprovalNeed, ...]) -> list[dict[str, str]]:
    return [
        {"approver": need.approver.value, "rule_id": need.rule_id, "reason": need.reason}
        for need in needs
    ]


class Approvable(Aggregate):
    """A request that pays out only once every approval it needs is given.

    Every event after the request names the request as its cause. Subclasses set
    `requested_by`, `correlation_id`, `status` and `awaiting` when requested.
    """

    @property
    def request_event_id(self) -> UUID:
        return event_id(type(self).__name__, self.id, 1)

    @property
    def ready_to_pay(self) -> bool:
        return self.status == "ready"

    def require(self, needs: tuple[ApprovalNeed, ...], now: datetime) -> None:
        if not needs:
            return  # the event that settled the request left it ready to pay
        self._approval_required(
            case_id=self.case_id,
            refund_id=self.id,
            approvals=_approval_record(needs),
            requested_by=self.requested_by,
            required_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )

    @event("ApprovalRequired")
    def _approval_required(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        approvals: list[dict[str, str]],
        requested_by: str,
        required_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "awaiting_approval"
        # Two rules may ask the same approver (over the limit, and a threat): one approval.
        self.awaiting = list(dict.fromkeys(need["approver"] for need in approvals))

    def approver_for(self, approver_id: str, roles: set[str]) -> Approver:
        """The approval this person may give now; four eyes: never on their own request."""
        if self.status != "awaiting_approval":
            raise NotAwaitingApproval(
                "this request is not waiting for approval", status=self.status
            )
        if approver_id == self.requested_by:
            raise ApprovalNotPermitted("nobody approves their own request", awaiting=self.awaiting)
        for awaited in self.awaiting:
            if awaited in roles:
                return Approver(awaited)
        raise ApprovalNotPermitted(
            f"this request waits for: {', '.join(self.awaiting)}", awaiting=self.awaiting
        )

    def approve(self, approver_id: str, roles: set[str], reason: str, now: datetime) -> None:
        approver = self.approver_for(approver_id, roles)
        self._approved(
            case_id=self.case_id,
            refund_id=self.id,
            approver=approver.value,
            approved_by=approver_id,
            reason=reason,
            approved_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )

    @event("Approved")
    def _approved(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        approver: str,
        approved_by: str,
        reason: str,
        approved_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.awaiting = [awaited for awaited in self.awaiting if awaited != approver]
        if not self.awaiting:
            self.status = "ready"

    def reject(self, approver_id: str, roles: set[str], reason: str, now: datetime) -> None:
        approver = self.approver_for(approver_id, roles)
        self._rejected(
            case_id=self.case_id,
            refund_id=self.id,
            approver=approver.value,
            rejected_by=approver_id,
            reason=reason,
            rejected_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )

    @event("Rejected")
    def _rejected(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        approver: str,
        rejected_by: str,
        reason: str,
        rejected_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "rejected"
        self.awaiting = []


class Refund(Approvable):
    """One refund request on a case: downgrade, decision, goodwill, approvals, payout."""

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
        evidence: list[str],
        technical_fault: bool,
        issue_resolved: bool,
        goodwill_declined: bool,
        threat: bool,
        plan: str | None,
        case_type: str | None,
        charged_at: datetime,
        requested_by: str,
        requested_at: datetime,
        request_fingerprint: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.case_id = case_id
        self.amount = amount
        self.reason = reason
        self.usage = usage
        self.evidence = evidence
        self.technical_fault = technical_fault
        self.issue_resolved = issue_resolved
        self.goodwill_declined = goodwill_declined
        self.threat = threat
        self.plan = plan
        self.case_type = case_type
        self.charged_at = charged_at
        self.requested_by = requested_by
        self.requested_at = requested_at
        self.request_fingerprint = request_fingerprint
        self.correlation_id = correlation_id
        self.status = "requested"
        self.path: str | None = None
        self.reasons: list[str] = []
        self.awaiting = []
        self.downgraded = False
        self.payout_id: UUID | None = None

    def facts(self, **changes: Any) -> RefundFacts:
        """The facts as requested, for deciding again (e.g. after goodwill is declined)."""
        facts = RefundFacts(
            reason=RefundReason(self.reason),
            usage=UsageFacts.model_validate(self.usage),
            cancellation_evidence=frozenset(EvidenceKind(kind) for kind in self.evidence),
            technical_fault=self.technical_fault,
            fault_resolved=self.issue_resolved,
            goodwill_declined=self.goodwill_declined,
            plan=self.plan or "unknown",
            amount_minor=self.amount["amount_minor"],
            currency=self.amount["currency"],
            case_type=CaseType(self.case_type or CaseType.GENERAL),
            threat=self.threat,
            charged_at=self.charged_at,
            requested_at=self.requested_at,
        )
        return replace(facts, **changes)

    def decide(self, decision: RefundDecision, policy_version: str, now: datetime) -> None:
        """Records the policy's decision: the downgrade first, then the path it takes."""
        if decision.downgrade_to_basic and not self.downgraded:
            self._downgrade_triggered(
                case_id=self.case_id,
                refund_id=self.id,
                from_plan=self.plan,
                to_plan=BASIC_PLAN,
                reason=self.reason,
                triggered_at=now,
                correlation_id=self.correlation_id,
                causation_id=self.request_event_id,
            )
        self._path_decided(
            case_id=self.case_id,
            refund_id=self.id,
            path=decision.path.value,
            downgrade_to_basic=decision.downgrade_to_basic,
            plan_correction=decision.plan_correction,
            reasons=list(decision.reasons),
            approvals=_approval_record(decision.approvals),
            policy_version=policy_version,
            decided_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )
        if decision.path is RefundPath.GOODWILL:
            self._goodwill_offered(
                case_id=self.case_id,
                refund_id=self.id,
                amount=self.amount,
                keeps_plan=self.plan,
                offered_at=now,
                correlation_id=self.correlation_id,
                causation_id=self.request_event_id,
            )
        elif decision.path is RefundPath.DISSATISFACTION:
            self.require(decision.approvals, now)

    @event("DowngradeTriggered")
    def _downgrade_triggered(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        from_plan: str | None,
        to_plan: str,
        reason: str,
        triggered_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.downgraded = True

    @event("PathDecided")
    def _path_decided(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        path: str,
        downgrade_to_basic: bool,
        plan_correction: bool,
        reasons: list[str],
        approvals: list[dict[str, str]],
        policy_version: str,
        decided_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.path = path
        self.reasons = [*self.reasons, *reasons]
        self.decided_approvals = approvals
        paying = path == RefundPath.DISSATISFACTION.value
        self.status = "ready" if paying and not approvals else path

    @event("GoodwillOffered")
    def _goodwill_offered(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        amount: dict[str, Any],
        keeps_plan: str | None,
        offered_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "goodwill_offered"

    def accept_goodwill(self, recorded_by: str, now: datetime) -> None:
        self._require_goodwill_offer()
        self._goodwill_accepted(
            case_id=self.case_id,
            refund_id=self.id,
            recorded_by=recorded_by,
            accepted_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )
        self.require(
            tuple(
                ApprovalNeed(Approver(need["approver"]), need["rule_id"], need["reason"])
                for need in self.decided_approvals
            ),
            now,
        )

    @event("GoodwillAccepted")
    def _goodwill_accepted(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        recorded_by: str,
        accepted_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "goodwill_accepted" if self.decided_approvals else "ready"

    def decline_goodwill(
        self, recorded_by: str, redecided: RefundDecision, policy_version: str, now: datetime
    ) -> None:
        """The customer said no to goodwill: a dissatisfaction refund, with the downgrade."""
        self._require_goodwill_offer()
        self._goodwill_declined(
            case_id=self.case_id,
            refund_id=self.id,
            recorded_by=recorded_by,
            declined_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )
        self.decide(redecided, policy_version, now)

    @event("GoodwillDeclined")
    def _goodwill_declined(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        recorded_by: str,
        declined_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "goodwill_declined"

    def _require_goodwill_offer(self) -> None:
        if self.status != "goodwill_offered":
            raise NoGoodwillOffer("no goodwill offer is open on this refund", status=self.status)

    def issue(self, payout_id: UUID, now: datetime) -> None:
        assert self.ready_to_pay, self.status
        self._issued(
            case_id=self.case_id,
            refund_id=self.id,
            payout_id=payout_id,
            amount=self.amount,
            path=self.path,
            issued_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )

    @event("Issued")
    def _issued(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        payout_id: UUID,
        amount: dict[str, Any],
        path: str,
        issued_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "issued"
        self.payout_id = payout_id


class Credit(Approvable):
    """A discretionary credit on a case, or the restoration of a grandfathered package."""

    @staticmethod
    def create_id(refund_id: UUID) -> UUID:
        return refund_id

    @event("Requested")
    def __init__(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        kind: str,
        amount: dict[str, Any] | None,
        package: str | None,
        justification: str,
        threat: bool,
        reasons: list[str],
        approvals: list[dict[str, str]],
        requested_by: str,
        requested_at: datetime,
        request_fingerprint: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.case_id = case_id
        self.kind = kind
        self.amount = amount
        self.package = package
        self.justification = justification
        self.requested_by = requested_by
        self.requested_at = requested_at
        self.request_fingerprint = request_fingerprint
        self.correlation_id = correlation_id
        self.status = "requested" if approvals else "ready"
        self.awaiting = []
        self.reasons = reasons
        self.payout_id: UUID | None = None

    def grant(self, payout_id: UUID, now: datetime) -> None:
        assert self.ready_to_pay, self.status
        self._granted(
            case_id=self.case_id,
            refund_id=self.id,
            payout_id=payout_id,
            kind=self.kind,
            amount=self.amount,
            package=self.package,
            granted_at=now,
            correlation_id=self.correlation_id,
            causation_id=self.request_event_id,
        )

    @event("Granted")
    def _granted(
        self,
        *,
        case_id: UUID,
        refund_id: UUID,
        payout_id: UUID,
        kind: str,
        amount: dict[str, Any] | None,
        package: str | None,
        granted_at: datetime,
        correlation_id: UUID,
        causation_id: UUID,
    ) -> None:
        self.status = "granted"
        self.payout_id = payout_id


publish(Refund.Requested, contract.RefundRequested)
publish(Refund.DowngradeTriggered, contract.DowngradeTriggered)
publish(Refund.PathDecided, contract.RefundPathDecided)
publish(Refund.GoodwillOffered, contract.GoodwillOffered)
publish(Refund.GoodwillAccepted, contract.GoodwillAccepted)
publish(Refund.GoodwillDeclined, contract.GoodwillDeclined)
publish(Refund.Issued, contract.RefundIssued)
publish(Credit.Requested, contract.CreditRequested)
publish(Credit.Granted, contract.CreditGranted)
publish(Approvable.ApprovalRequired, contract.RefundApprovalRequired)
publish(Approvable.Approved, contract.RefundApproved)
publish(Approvable.Rejected, contract.RefundRejected)
