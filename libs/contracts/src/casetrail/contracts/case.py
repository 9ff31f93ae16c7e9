"""How an event changes a case: the one pure fold every service and audit share.

`evolve(state, envelope)` never reads a clock, a database or the environment, so folding
the same history always gives the same case, byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from casetrail.contracts import events as ev
from casetrail.contracts.envelope import Envelope, fingerprint


@dataclass(frozen=True)
class ClockView:
    clock: str
    deadline: datetime
    state: str
    rule_id: str | None = None
    warnings: int = 0


@dataclass(frozen=True)
class RefundView:
    amount_minor: int
    currency: str
    reason: str
    outcome: str | None = None
    reviewer_role: str | None = None
    kind: str = "refund"
    path: str | None = None
    awaiting: tuple[str, ...] = ()
    paid_out: bool = False


@dataclass(frozen=True)
class WorklogView:
    at: datetime
    issue_type: str
    action: str
    outcome: str
    author: str


@dataclass(frozen=True)
class QaScorecardView:
    reviewer: str
    accuracy: int
    policy_compliance: int
    tone: int
    closure_quality: int
    scored_at: datetime


@dataclass(frozen=True)
class CaseState:
    case_id: UUID
    status: str = "Opened"
    channel: str | None = None
    customer_ref: str | None = None
    customer_id: UUID | None = None
    reference: str | None = None
    subject: str | None = None
    opened_at: datetime | None = None
    channels: tuple[str, ...] = ()
    messages: int = 0
    severity: str | None = None
    case_type: str | None = None
    kind: str | None = None
    tier: int | None = None
    high_priority: bool = False
    tags: tuple[str, ...] = ()
    vulnerabilities: tuple[str, ...] = ()
    assignee: str | None = None
    partner: str | None = None
    assignment_kind: str | None = None
    next_action: str | None = None
    worklog: tuple[WorklogView, ...] = ()
    escalations: int = 0
    customer_confirmed: bool = False
    csat_score: int | None = None
    rules_fired: tuple[str, ...] = ()
    clocks: dict[str, ClockView] = field(default_factory=dict)
    refunds: dict[str, RefundView] = field(default_factory=dict)
    escalations_requested: tuple[str, ...] = ()
    contact_attempts: int = 0
    contact_attempts_exhausted: bool = False
    qa_sampled: str | None = None
    qa_scorecards: tuple[QaScorecardView, ...] = ()
    version: int = 0

    def to_json_dict(self) -> dict[str, Any]:
        def plain(value: Any) -> Any:
            if isinstance(value, datetime):
                return value.isoformat()
            if isinstance(value, UUID):
                return str(value)
            if isinstance(value, tuple):
                return [plain(item) for item in value]
            if isinstance(value, dict):
                return {str(k): plain(v) for k, v in sorted(value.items())}
            if hasattr(value, "__dataclass_fields__"):
                return {k: plain(getattr(value, k)) for k in value.__dataclass_fields__}
            return value

        return plain(self)


def _with_channel(channels: tuple[str, ...], channel: str) -> tuple[str, ...]:
    return channels if channel in channels else (*channels, channel)


def evolve(state: CaseState | None, envelope: Envelope) -> CaseState:
    data = ev.read_data(envelope)
    if not isinstance(data, ev.EventData):
        raise ev.ContractError(f"{envelope.type} is not an event in the life of a case")
    current = state or CaseState(case_id=data.case_id)
    current = replace(current, version=current.version + 1)
    match data:
        case ev.CaseOpened():
            return replace(
                current,
                channel=data.channel.value,
                channels=_with_channel(current.channels, data.channel.value),
                messages=current.messages + 1,
                customer_ref=data.customer_ref,
                customer_id=data.customer_id,
                reference=data.reference,
                subject=data.subject,
                opened_at=data.opened_at,
            )
        case ev.MessageReceived():
            return replace(
                current,
                channels=_with_channel(current.channels, data.channel.value),
                messages=current.messages + 1,
            )
        case ev.CaseTriaged():
            return replace(
                current,
                status="Triaged" if current.status == "Opened" else current.status,
                severity=data.severity.value,
                case_type=data.case_type.value,
                kind=data.kind,
                tier=data.tier,
                high_priority=data.high_priority,
                tags=data.tags,
                vulnerabilities=data.vulnerabilities,
                rules_fired=current.rules_fired + data.rules_fired,
            )
        case ev.CaseAssigned():
            return replace(
                current,
                status=data.status,
                assignee=data.agent_id,
                partner=data.partner_id,
                assignment_kind=data.assignment_kind,
                rules_fired=current.rules_fired + data.rules_fired,
            )
        case ev.CaseStatusChanged():
            return replace(
                current,
                status=data.to_status,
                customer_confirmed=current.customer_confirmed or data.customer_confirmed,
            )
        case ev.CaseEscalated():
            return replace(
                current,
                tier=data.to_tier,
                escalations=current.escalations + 1,
                rules_fired=(*current.rules_fired, data.rule_id),
            )
        case ev.WorklogEntryAdded():
            entry = WorklogView(data.at, data.issue_type, data.action, data.outcome, data.author)
            return replace(
                current,
                worklog=(*current.worklog, entry),
                next_action=data.next_action or current.next_action,
            )
        case ev.CaseReclassified():
            return replace(
                current,
                severity=data.severity.value,
                case_type=data.case_type.value,
                high_priority=data.high_priority,
            )
        case ev.NextActionSet():
            return replace(current, next_action=data.next_action)
        case ev.SatisfactionRecorded():
            return replace(current, csat_score=data.score)
        case ev.QaSampled():
            return replace(
                current,
                qa_sampled=data.reason.value,
                rules_fired=(*current.rules_fired, data.rule_id),
            )
        case ev.QaScored():
            scorecard = QaScorecardView(
                data.reviewer,
                data.accuracy,
                data.policy_compliance,
                data.tone,
                data.closure_quality,
                data.scored_at,
            )
            return replace(current, qa_scorecards=(*current.qa_scorecards, scorecard))
        case ev.ClockStarted():
            clocks = dict(current.clocks)
            clocks[str(data.clock_id)] = ClockView(
                data.clock.value, data.deadline, "running", data.rule_id
            )
            return replace(current, clocks=clocks)
        case ev.ClockBreached():
            return _clock_changed(current, data.clock_id, state="breached")
        case ev.ClockPaused():
            return _clock_changed(current, data.clock_id, state="paused")
        case ev.ClockResumed():
            return _clock_changed(current, data.clock_id, state="running", deadline=data.deadline)
        case ev.ClockWarning():
            warned = current.clocks[str(data.clock_id)].warnings + 1
            return _clock_changed(current, data.clock_id, warnings=warned)
        case ev.ClockMet():
            return _clock_changed(current, data.clock_id, state="met")
        case ev.ClockRecomputed():
            return _clock_changed(current, data.clock_id, deadline=data.deadline)
        case ev.ClockWithdrawn():
            return _clock_changed(current, data.clock_id, state="withdrawn")
        case ev.EscalationRequested():
            requested = (*current.escalations_requested, data.rule_id)
            return replace(current, escalations_requested=requested)
        case ev.ContactAttempted():
            return replace(current, contact_attempts=data.attempt)
        case ev.ContactAttemptsExhausted():
            return replace(current, contact_attempts_exhausted=True)
        case ev.RefundRequested():
            refunds = dict(current.refunds)
            refunds[str(data.refund_id)] = RefundView(
                data.amount.amount_minor, data.amount.currency, data.reason.value
            )
            return replace(current, refunds=refunds)
        case ev.RefundDecided():
            refunds = dict(current.refunds)
            requested = refunds[str(data.refund_id)]
            refunds[str(data.refund_id)] = replace(
                requested, outcome=data.outcome.value, reviewer_role=data.reviewer_role
            )
            return replace(
                current, refunds=refunds, rules_fired=current.rules_fired + data.rules_fired
            )
        case ev.RefundReviewed():
            refunds = dict(current.refunds)
            held = refunds[str(data.refund_id)]
            outcome = "approved" if data.approved else "refused"
            refunds[str(data.refund_id)] = replace(held, outcome=outcome)
            return replace(current, refunds=refunds)
        case ev.CreditRequested():
            refunds = dict(current.refunds)
            amount = data.amount
            refunds[str(data.refund_id)] = RefundView(
                amount.amount_minor if amount else 0,
                amount.currency if amount else "",
                data.justification,
                kind=data.kind,
                outcome="requested",
            )
            return replace(current, refunds=refunds)
        case ev.RefundPathDecided():
            return _refund_changed(
                current,
                data.refund_id,
                path=data.path.value,
                outcome=data.path.value,
                rules_fired=data.reasons,
            )
        case ev.GoodwillOffered():
            return _refund_changed(current, data.refund_id, outcome="goodwill_offered")
        case ev.GoodwillDeclined():
            return _refund_changed(current, data.refund_id, outcome="goodwill_declined")
        case ev.GoodwillAccepted():
            return _refund_changed(current, data.refund_id, outcome="goodwill_accepted")
        case ev.RefundApprovalRequired():
            awaiting = tuple(need.approver.value for need in data.approvals)
            return _refund_changed(
                current, data.refund_id, outcome="awaiting_approval", awaiting=awaiting
            )
        case ev.RefundApproved():
            awaiting = list(current.refunds[str(data.refund_id)].awaiting)
            if data.approver.value in awaiting:
                awaiting.remove(data.approver.value)
            outcome = "awaiting_approval" if awaiting else "approved"
            return _refund_changed(
                current, data.refund_id, outcome=outcome, awaiting=tuple(awaiting)
            )
        case ev.RefundRejected():
            return _refund_changed(current, data.refund_id, outcome="rejected", awaiting=())
        case ev.RefundIssued():
            return _refund_changed(current, data.refund_id, outcome="issued", paid_out=True)
        case ev.CreditGranted():
            return _refund_changed(current, data.refund_id, outcome="granted", paid_out=True)
    return current


def _clock_changed(current: CaseState, clock_id: UUID, **changes: Any) -> CaseState:
    clocks = dict(current.clocks)
    clocks[str(clock_id)] = replace(clocks[str(clock_id)], **changes)
    return replace(current, clocks=clocks)


def _refund_changed(
    current: CaseState, refund_id: UUID, rules_fired: tuple[str, ...] = (), **changes: Any
) -> CaseState:
    refunds = dict(current.refunds)
    refunds[str(refund_id)] = replace(refunds[str(refund_id)], **changes)
    return replace(current, refunds=refunds, rules_fired=current.rules_fired + rules_fired)


def fold(history: Iterable[Envelope]) -> CaseState | None:
    state: CaseState | None = None
    for envelope in history:
        state = evolve(state, envelope)
    return state


def state_hash(state: CaseState | None) -> str:
    """SHA-256 of the state's canonical JSON: equal folds give equal hashes, byte for byte."""
    return fingerprint(state.to_json_dict() if state is not None else None)
