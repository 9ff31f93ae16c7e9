"""The event types Casetrail publishes: one pydantic model per type and version.

A published version is frozen: a change that would break a reader needs a new type
name (`...v2`) and an upcaster from the old one, registered with `upcaster`.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, ClassVar, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, ValidationError

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.personal import sealed_max_length


class ContractError(ValueError):
    """An event that does not satisfy its contract: unknown type, bad data."""


class Channel(StrEnum):
    PHONE = "phone"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    EMAIL = "email"
    CHAT = "chat"
    IN_APP = "in_app"
    WEB = "web"
    SOCIAL = "social"
    EXECUTIVE = "executive"
    REGULATORY = "regulatory"
    LEGAL = "legal"
    NOD = "nod"
    CORPORATE = "corporate"


class Severity(StrEnum):
    S1 = "S1"
    S2 = "S2"
    S3 = "S3"
    S4 = "S4"


class CaseType(StrEnum):
    GENERAL = "General"
    EXECUTIVE = "Executive"
    REGULATORY = "Regulatory"
    LEGAL = "Legal"
    NOD = "NOD"


class Money(BaseModel):
    """An amount in integer minor units (cents, pence) of an ISO 4217 currency."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    amount_minor: int = Field(ge=0, strict=True)
    currency: str = Field(pattern=r"^[A-Z]{3}$")


class AttachmentRef(BaseModel):
    """What the case knows of an attachment; its content is never inside an event."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    media_type: str = Field(min_length=3, max_length=255, pattern=r"^[\w.+-]+/[\w.+-]+$")
    size_bytes: int = Field(ge=0, strict=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")


class Payload(BaseModel):
    """Base of every event payload: each names its type and the stream it belongs to."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    TYPE: ClassVar[str]

    @property
    def subject_id(self) -> UUID:
        raise NotImplementedError


class EventData(Payload):
    """An event in the life of one case; the case id is the CloudEvent's subject."""

    case_id: UUID

    @property
    def subject_id(self) -> UUID:
        return self.case_id


class CustomerEventData(Payload):
    """An event on a customer's record, which outlives any one case."""

    customer_id: UUID

    @property
    def subject_id(self) -> UUID:
        return self.customer_id


class MediaRef(BaseModel):
    """Media a provider hosts (Twilio, Meta); only its address is kept."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    url: str = Field(min_length=1, max_length=2000)
    media_type: str = Field(min_length=1, max_length=255)


ContactKind = Literal["email", "phone", "whatsapp", "account", "social"]


class ContactPoint(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: ContactKind
    value: str = Field(min_length=1, max_length=320)


class RecordedContactPoint(ContactPoint):
    """A contact point as events carry it: its value sealed (crypto-shredding)."""

    value: str = Field(min_length=1, max_length=sealed_max_length(320))


class CaseOpened(EventData):
    TYPE = "casetrail.case.opened.v1"

    channel: Channel
    customer_ref: str = Field(min_length=1, max_length=sealed_max_length(200))
    subject: str = Field(min_length=1, max_length=sealed_max_length(500))
    description: str = Field(min_length=1, max_length=sealed_max_length(100_000))
    transaction_id: str | None = Field(None, max_length=200)
    transaction_time: AwareDatetime | None = None
    attachments: tuple[AttachmentRef, ...] = ()
    opened_at: AwareDatetime
    customer_id: UUID | None = None
    reference: str | None = Field(None, description="the short reference customers quote")
    message_id: UUID | None = Field(None, description="the message that opened the case")
    provider: str | None = None
    provider_message_id: str | None = Field(None, max_length=500)
    media: tuple[MediaRef, ...] = ()
    source: dict[str, JsonValue] = Field(
        default_factory=dict,
        description="channel facts: agency and its complaint id, callback consent, tags",
    )
    follow_up_of: UUID | None = Field(None, description="a closed case this one follows up")


class MessageReceived(EventData):
    """A further message on an open case, from any channel."""

    TYPE = "casetrail.case.message_received.v1"

    message_id: UUID
    channel: Channel
    provider: str
    provider_message_id: str | None = Field(None, max_length=500)
    customer_id: UUID | None
    subject: str | None = Field(None, max_length=sealed_max_length(500))
    body: str = Field(min_length=1, max_length=sealed_max_length(100_000))
    attachments: tuple[AttachmentRef, ...] = ()
    media: tuple[MediaRef, ...] = ()
    received_at: AwareDatetime
    continued_by: str = Field(description="the rule that tied the message to this case")


class CustomerContactUpdated(CustomerEventData):
    """The customer's contact details after a change: what was added and removed."""

    TYPE = "casetrail.customer.contact_updated.v1"

    name: str | None = Field(None, max_length=sealed_max_length(200))
    contacts: tuple[RecordedContactPoint, ...]
    added: tuple[RecordedContactPoint, ...] = ()
    removed: tuple[RecordedContactPoint, ...] = ()
    updated_by: str
    updated_at: AwareDatetime


class CustomerErased(CustomerEventData):
    """The customer's personal data was erased: their data keys are destroyed.

    Nothing recorded changes; every sealed field of theirs reads as erased from now on.
    """

    TYPE = "casetrail.customer.erased.v1"

    key_ids: tuple[str, ...] = Field(description="the destroyed data keys")
    reason: str = Field(min_length=1, max_length=2000)
    erased_by: str
    erased_at: AwareDatetime


class CaseTriaged(EventData):
    TYPE = "casetrail.case.triaged.v1"

    severity: Severity
    case_type: CaseType
    high_priority: bool
    tier: Literal[1, 2, 3]
    channel: Channel
    opened_at: AwareDatetime
    phone_contact_within_minutes: int | None = Field(None, ge=1)
    rules_fired: tuple[str, ...]
    policy_version: str
    kind: Literal["ESL", "ESLI"] = "ESL"
    tags: tuple[str, ...] = ()
    vulnerabilities: tuple[str, ...] = ()


class CaseAssigned(EventData):
    """The case went to an agent (and a partner on a Dual assignment), by rule or by hand."""

    TYPE = "casetrail.case.assigned.v1"

    agent_id: str | None = Field(description="None: nobody qualified is on shift; queued")
    partner_id: str | None = None
    assignment_kind: Literal["Dual", "Task"]
    team: str | None = None
    status: str
    assigned_by: str
    reason: str | None = Field(None, max_length=2000)
    rules_fired: tuple[str, ...] = ()
    assigned_at: AwareDatetime


class CaseStatusChanged(EventData):
    TYPE = "casetrail.case.status_changed.v1"

    from_status: str
    to_status: str
    changed_by: str
    reason: str | None = Field(None, max_length=2000)
    customer_confirmed: bool = False
    changed_at: AwareDatetime


class CaseEscalated(EventData):
    TYPE = "casetrail.case.escalated.v1"

    from_tier: Literal[1, 2, 3]
    to_tier: Literal[1, 2, 3]
    reason: str = Field(min_length=1, max_length=2000)
    rule_id: str
    escalated_by: str
    escalated_at: AwareDatetime


class CaseReclassified(EventData):
    """A person corrected the case's severity or type; the clocks follow the new facts."""

    TYPE = "casetrail.case.reclassified.v1"

    from_severity: Severity
    severity: Severity
    from_case_type: CaseType
    case_type: CaseType
    high_priority: bool
    reason: str = Field(min_length=1, max_length=2000)
    reclassified_by: str
    reclassified_at: AwareDatetime


class WorklogEntryAdded(EventData):
    """One interaction on the case: when, what kind of issue, what was done, the outcome."""

    TYPE = "casetrail.case.worklog_entry_added.v1"

    entry_id: UUID
    at: AwareDatetime
    issue_type: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=sealed_max_length(2000))
    outcome: str = Field(min_length=1, max_length=sealed_max_length(2000))
    author: str
    next_action: str | None = Field(None, max_length=500)


class NextActionSet(EventData):
    TYPE = "casetrail.case.next_action_set.v1"

    next_action: str = Field(min_length=1, max_length=500)
    set_by: str
    set_at: AwareDatetime


class SatisfactionSurveyRequested(EventData):
    TYPE = "casetrail.case.satisfaction_survey_requested.v1"

    survey_id: UUID
    due_at: AwareDatetime
    requested_at: AwareDatetime


class SatisfactionRecorded(EventData):
    TYPE = "casetrail.case.satisfaction_recorded.v1"

    survey_id: UUID
    score: int = Field(ge=0, le=10)
    feedback: str | None = Field(None, max_length=sealed_max_length(5000))
    recorded_at: AwareDatetime


class QaSampleReason(StrEnum):
    RANDOM = "random"
    ESCALATION = "escalation"
    CRITICAL = "critical"


class QaSampled(EventData):
    """The case was chosen for a quality review; a random choice records its draw, so
    anyone holding the seed can redo it."""

    TYPE = "casetrail.case.qa_sampled.v1"

    reason: QaSampleReason
    rule_id: str
    seed_id: str = Field(description="names the sampling seed, never the seed itself")
    draw_ppm: int | None = Field(None, ge=0, lt=1_000_000, description="random draw, per million")
    rate_ppm: int | None = Field(None, ge=0, le=1_000_000, description="sampled below this")
    policy_version: str
    sampled_at: AwareDatetime


class QaScored(EventData):
    """A reviewer's scorecard for a sampled case, each criterion from 1 (poor) to 5."""

    TYPE = "casetrail.case.qa_scored.v1"

    scorecard_id: UUID
    reviewer: str
    accuracy: int = Field(ge=1, le=5)
    policy_compliance: int = Field(ge=1, le=5)
    tone: int = Field(ge=1, le=5)
    closure_quality: int = Field(ge=1, le=5)
    notes: str | None = Field(None, max_length=5000)
    scored_at: AwareDatetime


class CaseLeftAssignedAtShiftEnd(EventData):
    """End of shift came and the case was still waiting in Assigned."""

    TYPE = "casetrail.case.left_assigned_at_shift_end.v1"

    agent_id: str
    shift_ended_at: AwareDatetime
    reported_at: AwareDatetime


class ClockKind(StrEnum):
    FIRST_RESPONSE = "first_response"
    RESOLUTION = "resolution"
    REMEDIATION_PLAN = "remediation_plan"
    INITIAL_CONTACT = "initial_contact"
    REGULATORY_RESPONSE = "regulatory_response"
    REGULATORY_FINAL = "regulatory_final"
    DISPUTE_INVESTIGATION = "dispute_investigation"
    REFUND_WINDOW = "refund_window"
    CHARGEBACK_WINDOW = "chargeback_window"
    ESCALATION = "escalation"


class ClockStarted(EventData):
    TYPE = "casetrail.clock.started.v1"

    clock_id: UUID
    clock: ClockKind
    started_at: AwareDatetime
    deadline: AwareDatetime
    basis: Literal["business", "calendar"]
    target_minutes: int = Field(ge=1)
    rule_id: str
    calendar: str
    policy_version: str
    calendar_version: str | None = None
    regime: str | None = Field(None, description="the regulatory regime the clock serves")
    pausable: bool = True
    escalate_to_tier: int | None = Field(None, ge=1, le=3)


class ClockBreached(EventData):
    TYPE = "casetrail.clock.breached.v1"

    clock_id: UUID
    clock: ClockKind
    policy_version: str | None = Field(None, description="the SLA policy that set the deadline")
    calendar_version: str | None = None
    deadline: AwareDatetime
    breached_at: AwareDatetime
    late: bool = Field(description="fired after the deadline by more than the grace period")
    rule_id: str | None = None


class ClockPaused(EventData):
    """The case waits on the customer: a contractual clock stops counting."""

    TYPE = "casetrail.clock.paused.v1"

    clock_id: UUID
    clock: ClockKind
    policy_version: str | None = Field(None, description="the SLA policy that set the deadline")
    calendar_version: str | None = None
    paused_at: AwareDatetime
    used_seconds: int = Field(ge=0, description="measured time used before the pause")


class ClockResumed(EventData):
    TYPE = "casetrail.clock.resumed.v1"

    clock_id: UUID
    clock: ClockKind
    policy_version: str | None = Field(None, description="the SLA policy that set the deadline")
    calendar_version: str | None = None
    resumed_at: AwareDatetime
    deadline: AwareDatetime


class ClockWarning(EventData):
    """A clock used this fraction of its time: a warning before it breaches."""

    TYPE = "casetrail.clock.warning.v1"

    clock_id: UUID
    clock: ClockKind
    policy_version: str | None = Field(None, description="the SLA policy that set the deadline")
    calendar_version: str | None = None
    rule_id: str
    fraction: float = Field(gt=0, lt=1)
    deadline: AwareDatetime
    warned_at: AwareDatetime
    late: bool


class ClockMet(EventData):
    TYPE = "casetrail.clock.met.v1"

    clock_id: UUID
    clock: ClockKind
    policy_version: str | None = Field(None, description="the SLA policy that set the deadline")
    calendar_version: str | None = None
    rule_id: str
    deadline: AwareDatetime
    met_at: AwareDatetime
    on_time: bool
    met_by: str = Field(description="the type of the event that satisfied the clock")


class ClockRecomputed(EventData):
    """A correction: the case's facts, the policy or a calendar changed the deadline.

    History is never rewritten; this names the versions that computed the new deadline.
    """

    TYPE = "casetrail.clock.recomputed.v1"

    clock_id: UUID
    clock: ClockKind
    rule_id: str
    previous_deadline: AwareDatetime
    deadline: AwareDatetime
    policy_version: str
    calendar: str
    calendar_version: str
    reason: str
    recomputed_at: AwareDatetime


class ClockWithdrawn(EventData):
    """The rule no longer applies to the case (its severity or type changed)."""

    TYPE = "casetrail.clock.withdrawn.v1"

    clock_id: UUID
    clock: ClockKind
    policy_version: str | None = Field(None, description="the SLA policy that set the deadline")
    calendar_version: str | None = None
    rule_id: str
    reason: str
    withdrawn_at: AwareDatetime


class EscalationRequested(EventData):
    """A clock breached: the case should go to the next tier, naming the rule."""

    TYPE = "casetrail.case.escalation_requested.v1"

    clock_id: UUID
    rule_id: str
    to_tier: int = Field(ge=1, le=3)
    reason: str
    requested_at: AwareDatetime


class ContactAttempted(EventData):
    """One initial-contact attempt, each on its own line, over the channels it used."""

    TYPE = "casetrail.case.contact_attempted.v1"

    attempt: int = Field(ge=1)
    channels: tuple[str, ...] = Field(min_length=1)
    reached: bool
    note: str | None = Field(None, max_length=2000)
    attempted_by: str
    attempted_at: AwareDatetime


class ContactAttemptsExhausted(EventData):
    """Every allowed attempt failed to reach the customer: the case is flagged."""

    TYPE = "casetrail.case.contact_attempts_exhausted.v1"

    attempts: int
    rule_id: str
    flagged_at: AwareDatetime


class RefundReason(StrEnum):
    NOT_SATISFIED = "not_satisfied"
    UNABLE_TO_USE_BUILD_IT = "unable_to_use_build_it"
    CHARGED_AFTER_CANCEL = "charged_after_cancel"
    CANCELLED_ON_DUE_DATE = "cancelled_on_due_date"
    FORGOT_TO_CANCEL = "forgot_to_cancel"
    NOT_USED = "not_used"
    REPORTS_NOT_UPDATED = "reports_not_updated"
    TECHNICAL_ERROR = "technical_error"


class UsageFacts(BaseModel):
    """What the customer has used; any usage changes a forgot-to-cancel decision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    logged_in: bool
    reports_pulled: bool
    build_it_used: bool
    contacted_support_before: bool = False
    reward_it_redeemed: bool = False

    @property
    def any_usage(self) -> bool:
        return (
            self.logged_in or self.reports_pulled or self.build_it_used or (self.reward_it_redeemed)
        )


class RefundRequested(EventData):
    TYPE = "casetrail.refund.requested.v1"

    refund_id: UUID
    amount: Money
    reason: RefundReason
    usage: UsageFacts
    cancellation_evidence: bool
    issue_resolved: bool
    goodwill_declined: bool
    threat: bool
    charged_at: AwareDatetime | None
    requested_by: str
    requested_at: AwareDatetime
    technical_fault: bool | None = None
    evidence: tuple[str, ...] = Field((), description="kinds of evidence of a failed cancel")
    plan: str | None = Field(None, max_length=100)
    case_type: CaseType | None = None


class RefundOutcome(StrEnum):
    APPROVED = "approved"
    REFUSED = "refused"
    PENDING_REVIEW = "pending_review"
    PENDING_RESOLUTION = "pending_resolution"


class RefundDecided(EventData):
    TYPE = "casetrail.refund.decided.v1"

    refund_id: UUID
    outcome: RefundOutcome
    kind: Literal["dissatisfaction", "goodwill"] | None
    downgrade_to_basic: bool
    plan_correction: bool
    reviewer_role: Literal["supervisor", "leadership"] | None
    rules_fired: tuple[str, ...]
    policy_version: str
    decided_at: AwareDatetime


class RefundReviewed(EventData):
    """A person with the required role approved or rejected a refund held for review."""

    TYPE = "casetrail.refund.reviewed.v1"

    refund_id: UUID
    approved: bool
    reviewed_by: str
    reviewer_role: Literal["supervisor", "leadership"]
    reason: str = Field(min_length=1, max_length=2000)
    reviewed_at: AwareDatetime


class RefundPath(StrEnum):
    RESOLVE_FIRST = "resolve_first"
    GOODWILL = "goodwill"
    DISSATISFACTION = "dissatisfaction"
    NO_REFUND = "no_refund"
    CHARGEBACK_OR_DISPUTE = "chargeback_or_dispute"


class Approver(StrEnum):
    SUPERVISOR = "supervisor"
    LEADERSHIP = "leadership"
    MANAGER = "manager"


class ApprovalNeed(BaseModel):
    """One approval a request waits for: whose, and the rule that asks for it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    approver: Approver
    rule_id: str
    reason: str


class RefundPathDecided(EventData):
    """The policy's decision on a refund request: its path, the rules that fired, the
    approvals it needs. Decided again when the customer declines a goodwill offer."""

    TYPE = "casetrail.refund.decided.v2"

    refund_id: UUID
    path: RefundPath
    downgrade_to_basic: bool
    plan_correction: bool
    reasons: tuple[str, ...]
    approvals: tuple[ApprovalNeed, ...]
    policy_version: str
    decided_at: AwareDatetime


class DowngradeTriggered(EventData):
    """Billing stops: the customer's plan goes to Basic, first, on a refund request."""

    TYPE = "casetrail.refund.downgrade_triggered.v1"

    refund_id: UUID
    from_plan: str | None
    to_plan: str
    reason: RefundReason
    triggered_at: AwareDatetime


class GoodwillOffered(EventData):
    TYPE = "casetrail.refund.goodwill_offered.v1"

    refund_id: UUID
    amount: Money
    keeps_plan: str | None
    offered_at: AwareDatetime


class GoodwillDeclined(EventData):
    TYPE = "casetrail.refund.goodwill_declined.v1"

    refund_id: UUID
    recorded_by: str
    declined_at: AwareDatetime


class GoodwillAccepted(EventData):
    TYPE = "casetrail.refund.goodwill_accepted.v1"

    refund_id: UUID
    recorded_by: str
    accepted_at: AwareDatetime


class CreditRequested(EventData):
    """An agent's discretionary credit, or a grandfathered package's restoration."""

    TYPE = "casetrail.credit.requested.v1"

    refund_id: UUID = Field(description="the request's id, shared with refunds' approvals")
    kind: Literal["credit", "package_restoration"]
    amount: Money | None
    package: str | None = Field(None, max_length=200)
    justification: str = Field(min_length=1, max_length=5000)
    threat: bool
    requested_by: str
    requested_at: AwareDatetime


class RefundApprovalRequired(EventData):
    """A refund or credit waits for these approvals before anything is issued."""

    TYPE = "casetrail.refund.approval_required.v1"

    refund_id: UUID
    approvals: tuple[ApprovalNeed, ...]
    requested_by: str
    required_at: AwareDatetime


class RefundApproved(EventData):
    TYPE = "casetrail.refund.approved.v1"

    refund_id: UUID
    approver: Approver
    approved_by: str
    reason: str = Field(min_length=1, max_length=2000)
    approved_at: AwareDatetime


class RefundRejected(EventData):
    TYPE = "casetrail.refund.rejected.v1"

    refund_id: UUID
    approver: Approver
    rejected_by: str
    reason: str = Field(min_length=1, max_length=2000)
    rejected_at: AwareDatetime


class RefundIssued(EventData):
    """The money went out, once: `payout_id` is the instruction's idempotency key."""

    TYPE = "casetrail.refund.issued.v1"

    refund_id: UUID
    payout_id: UUID
    amount: Money
    path: RefundPath
    issued_at: AwareDatetime


class CreditGranted(EventData):
    TYPE = "casetrail.credit.granted.v1"

    refund_id: UUID
    payout_id: UUID
    kind: Literal["credit", "package_restoration"]
    amount: Money | None
    package: str | None = None
    granted_at: AwareDatetime


EVENT_TYPES: dict[str, type[Payload]] = {
    model.TYPE: model
    for model in (
        CaseOpened,
        MessageReceived,
        CustomerContactUpdated,
        CustomerErased,
        CaseTriaged,
        CaseAssigned,
        CaseStatusChanged,
        CaseEscalated,
        CaseReclassified,
        WorklogEntryAdded,
        NextActionSet,
        SatisfactionSurveyRequested,
        SatisfactionRecorded,
        CaseLeftAssignedAtShiftEnd,
        QaSampled,
        QaScored,
        ClockStarted,
        ClockBreached,
        ClockPaused,
        ClockResumed,
        ClockWarning,
        ClockMet,
        ClockRecomputed,
        ClockWithdrawn,
        EscalationRequested,
        ContactAttempted,
        ContactAttemptsExhausted,
        RefundRequested,
        RefundDecided,
        RefundReviewed,
        RefundPathDecided,
        DowngradeTriggered,
        GoodwillOffered,
        GoodwillDeclined,
        GoodwillAccepted,
        CreditRequested,
        RefundApprovalRequired,
        RefundApproved,
        RefundRejected,
        RefundIssued,
        CreditGranted,
    )
}

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
UPCASTERS: dict[str, tuple[str, Upcaster]] = {}


def upcaster(old_type: str, new_type: str) -> Callable[[Upcaster], Upcaster]:
    """Registers how data of `old_type` becomes data of `new_type` (chains are followed)."""

    def register(function: Upcaster) -> Upcaster:
        UPCASTERS[old_type] = (new_type, function)
        return function

    return register


def upcast(event_type: str, data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    seen = set()
    while event_type in UPCASTERS:
        if event_type in seen:
            raise ContractError(f"upcaster cycle at {event_type}")
        seen.add(event_type)
        new_type, function = UPCASTERS[event_type]
        data = function(data)
        event_type = new_type
    return event_type, data


def read_data(envelope: Envelope) -> Payload:
    """The envelope's payload as the newest model of its type, or a ContractError."""
    event_type, data = upcast(envelope.type, envelope.data)
    model = EVENT_TYPES.get(event_type)
    if model is None:
        raise ContractError(f"unknown event type {envelope.type!r}")
    try:
        payload = model.model_validate(data)
    except ValidationError as error:
        raise ContractError(f"{envelope.type}: {error}") from error
    if payload.subject_id != envelope.subject:
        raise ContractError("the envelope's subject and the data name different streams")
    return payload


def parse(raw: bytes) -> tuple[Envelope, Payload]:
    """Bytes from Kafka to an envelope and its typed payload, or a ContractError."""
    try:
        envelope = Envelope.from_bytes(raw)
    except ValidationError as error:
        raise ContractError(f"not a Casetrail CloudEvent: {error}") from error
    return envelope, read_data(envelope)
