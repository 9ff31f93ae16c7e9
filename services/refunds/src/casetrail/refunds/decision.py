"""The refund and credit policy (domain reference section 6) as pure decisions.

Facts and policy come in as arguments; nothing here reads a clock, a file or the
environment, so a recorded decision can be replayed from its facts and policy version.
Every decision lists the ids of the rules that made it, in the order they fired.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from casetrail.contracts.events import Approver, CaseType, RefundPath, RefundReason, UsageFacts
from casetrail.refunds.policy import CurrencyLimits, RefundPolicy

__all__ = [
    "ApprovalNeed",
    "Approver",
    "CreditDecision",
    "CreditFacts",
    "EvidenceKind",
    "InvalidFacts",
    "JustificationRequired",
    "Path",
    "RefundDecision",
    "RefundFacts",
    "RefundPolicyError",
    "UnsupportedCurrency",
    "days_since_charge",
    "decide_credit",
    "decide_package_restoration",
    "decide_refund",
]

# The path is what `RefundPathDecided` publishes and the approver what an approval names:
# one enum each, shared with the contract, so that nothing translates between them.
Path = RefundPath


class RefundPolicyError(ValueError):
    """A request the policy cannot decide as given; the caller's to fix, not a refusal."""


class UnsupportedCurrency(RefundPolicyError):
    """No limits for this currency: deciding without them could pay out unreviewed."""


class JustificationRequired(RefundPolicyError):
    """Credits and restorations are discretionary, so each needs its reason in writing."""


class InvalidFacts(RefundPolicyError):
    """Facts no real request has: a naive time, a charge after the request, a negative sum."""


class EvidenceKind(StrEnum):
    """What shows that the customer asked to cancel and it did not take."""

    CANCEL_REQUEST_MESSAGE = "cancel_request_message"  # an e-mail or chat asking and confirming
    ACTIVITY_LOG = "activity_log"  # our activity logs of the cancel request
    CANCEL_CONFIRMATION_SCREENSHOT = "cancel_confirmation_screenshot"


@dataclass(frozen=True)
class ApprovalNeed:
    approver: Approver
    rule_id: str
    reason: str


@dataclass(frozen=True)
class RefundFacts:
    reason: RefundReason
    usage: UsageFacts
    cancellation_evidence: frozenset[EvidenceKind]
    technical_fault: bool
    fault_resolved: bool
    goodwill_declined: bool
    # No rule reads the plan: the path alone decides the downgrade, even from Basic.
    plan: str
    amount_minor: int
    currency: str
    case_type: CaseType
    threat: bool
    charged_at: datetime
    requested_at: datetime


@dataclass(frozen=True)
class RefundDecision:
    path: Path
    downgrade_to_basic: bool
    plan_correction: bool
    reasons: tuple[str, ...]
    approvals: tuple[ApprovalNeed, ...]


@dataclass(frozen=True)
class CreditFacts:
    amount_minor: int
    currency: str
    case_type: CaseType
    justification: str | None
    threat: bool


@dataclass(frozen=True)
class CreditDecision:
    reasons: tuple[str, ...]
    approvals: tuple[ApprovalNeed, ...]

    @property
    def allowed(self) -> bool:
        """The agent may grant it now, on their own authority; otherwise it waits for
        `approvals`. Derived, so that it can never disagree with them."""
        return not self.approvals


# "A feature not working or a technical error on our side": these reasons are our fault
# by their nature, whatever the agent ticked.
FAULT_ON_OUR_SIDE = frozenset(
    {
        RefundReason.TECHNICAL_ERROR,
        RefundReason.UNABLE_TO_USE_BUILD_IT,
        RefundReason.REPORTS_NOT_UPDATED,
    }
)
CANCEL_DID_NOT_TAKE = frozenset(
    {RefundReason.CHARGED_AFTER_CANCEL, RefundReason.CANCELLED_ON_DUE_DATE}
)
PLAIN_DISSATISFACTION = frozenset({RefundReason.NOT_SATISFIED, RefundReason.NOT_USED})
PAYS_OUT = frozenset({Path.GOODWILL, Path.DISSATISFACTION})
# The downgrade stops further billing on every refund request, with two exceptions:
# goodwill keeps the customer's plan (the specific rule wins over the general one), and
# while our fault is being fixed goodwill may still follow, so the plan is left alone
# until the request is decided again.
KEEPS_PLAN = frozenset({Path.GOODWILL, Path.RESOLVE_FIRST})


def days_since_charge(charged_at: datetime, requested_at: datetime) -> int:
    """Whole calendar days from the charge's UTC date to the request's UTC date.

    Dates, not elapsed time: the playbook's "30 days" is read off a statement, so day 30
    lasts all day and a charge at 23:50 is one day old at 00:10. UTC rather than the
    customer's zone, so the same facts give the same answer wherever this runs; near
    midnight it can differ by one from the customer's local date (and from the
    sla-timer's window clocks, which end at the market's local midnight).
    """
    for name, moment in (("charged_at", charged_at), ("requested_at", requested_at)):
        if moment.utcoffset() is None:
            # A naive time would be read in the server's zone: the environment, by stealth.
            raise InvalidFacts(f"{name} must carry its time zone: {moment.isoformat()}")
    if charged_at > requested_at:
        raise InvalidFacts(
            f"the charge ({charged_at.isoformat()}) is after the request "
            f"({requested_at.isoformat()})"
        )
    return (requested_at.astimezone(UTC).date() - charged_at.astimezone(UTC).date()).days


def decide_refund(facts: RefundFacts, policy: RefundPolicy) -> RefundDecision:
    """The path a refund request takes, whether the plan goes to Basic, and who must
    approve before anything is paid."""
    limits = _limits_for(facts.currency, policy)
    _require_non_negative(facts.amount_minor)
    days = days_since_charge(facts.charged_at, facts.requested_at)
    if days > policy.chargeback_window_days:
        return _decided(Path.NO_REFUND, ("REF-OUTSIDE-CHARGEBACK-WINDOW",))
    if days > policy.refund_window_days:
        # Too late for us to refund, not too late for the card scheme: the customer's
        # remedy is a chargeback, which we answer with our own dispute investigation.
        return _decided(Path.CHARGEBACK_OR_DISPUTE, ("REF-OUTSIDE-REFUND-WINDOW",))
    branch = _decision_tree(facts)
    before_paying = _approvals_before_paying(facts, limits) if branch.path in PAYS_OUT else ()
    return _decided(
        branch.path,
        ("REF-WINDOW-OK", branch.rule_id, *(need.rule_id for need in before_paying)),
        plan_correction=branch.plan_correction,
        approvals=branch.holds + before_paying,
    )


@dataclass(frozen=True)
class _Branch:
    path: Path
    rule_id: str
    plan_correction: bool = False
    # Approvals the branch itself asks for; its rule id is already in the reasons.
    holds: tuple[ApprovalNeed, ...] = ()


def _decision_tree(facts: RefundFacts) -> _Branch:
    # Our own fault comes first, whatever reason was given: a customer who could not use
    # what they paid for is owed the fix and the goodwill offer, not a usage check.
    if facts.technical_fault or facts.reason in FAULT_ON_OUR_SIDE:
        if not facts.fault_resolved:
            return _Branch(Path.RESOLVE_FIRST, "REF-FAULT-RESOLVE-FIRST")
        if facts.goodwill_declined:
            return _Branch(Path.DISSATISFACTION, "REF-FAULT-GOODWILL-DECLINED")
        return _Branch(Path.GOODWILL, "REF-FAULT-GOODWILL")
    if facts.reason == RefundReason.FORGOT_TO_CANCEL:
        # Having contacted support before is not usage: asking for help, perhaps about
        # this very charge, is not consuming the service (`UsageFacts.any_usage` agrees).
        if facts.usage.any_usage:
            return _Branch(Path.NO_REFUND, "REF-FORGOT-USED")
        return _Branch(Path.DISSATISFACTION, "REF-FORGOT-UNUSED")
    if facts.reason in CANCEL_DID_NOT_TAKE:
        if facts.cancellation_evidence:
            return _Branch(Path.DISSATISFACTION, "REF-CANCEL-FAILED", plan_correction=True)
        # Neither refused nor paid on the customer's word alone. Refusing outright would
        # deny a claim that our own records may well prove (a cancel that did not take is
        # our failure, and a customer rarely keeps the e-mail); paying unchecked would pay
        # any claim. A supervisor looks first; no plan correction without evidence.
        return _Branch(
            Path.DISSATISFACTION,
            "REF-CANCEL-NO-EVIDENCE",
            holds=(
                ApprovalNeed(
                    Approver.SUPERVISOR,
                    "REF-CANCEL-NO-EVIDENCE",
                    "The customer says the cancel did not take but no evidence is attached; "
                    "a supervisor checks our records before it is paid.",
                ),
            ),
        )
    if facts.reason in PLAIN_DISSATISFACTION:
        return _Branch(Path.DISSATISFACTION, "REF-DISSATISFACTION")
    # A new reason must be decided on purpose, never fall into a default that pays.
    raise InvalidFacts(f"no refund rule covers the reason {facts.reason!r}")


def _approvals_before_paying(
    facts: RefundFacts, limits: CurrencyLimits
) -> tuple[ApprovalNeed, ...]:
    # Only money going out is held: "reviewed ... before it is issued". A refusal or a
    # dispute issues nothing, so a threat there is for the case's escalation, not this.
    # Each rule asks on its own, so an approver sees every reason they are asked for.
    needs: list[ApprovalNeed] = []
    if facts.amount_minor > limits.supervisor_review_over_minor:
        needs.append(
            ApprovalNeed(
                Approver.SUPERVISOR,
                "REF-APPROVAL-OVER-LIMIT",
                f"A refund over {limits.supervisor_review_over_minor} {facts.currency} "
                "minor units is reviewed by a supervisor.",
            )
        )
    if facts.threat:
        needs.append(_threat_review("REF-APPROVAL-THREAT"))
    # Section 6 names NOD credits; a refund on a NOD case is money paid on a legal
    # dispute all the same, so it meets the same leadership limit, on top of the
    # supervisor's review rather than instead of it.
    if facts.case_type == CaseType.NOD and facts.amount_minor > limits.nod_leadership_over_minor:
        needs.append(
            _nod_leadership("REF-APPROVAL-NOD-LEADERSHIP", limits, facts.currency, "refund")
        )
    return tuple(needs)


def decide_credit(facts: CreditFacts, policy: RefundPolicy) -> CreditDecision:
    """Who must approve a discretionary credit; the agent alone up to their limit."""
    _require_justification(facts.justification)
    limits = _limits_for(facts.currency, policy)
    _require_non_negative(facts.amount_minor)
    needs: list[ApprovalNeed] = []
    if facts.amount_minor > limits.agent_credit_limit_minor:
        needs.append(
            ApprovalNeed(
                Approver.SUPERVISOR,
                "CRD-APPROVAL-OVER-AGENT-LIMIT",
                f"A credit over the agent's limit of {limits.agent_credit_limit_minor} "
                f"{facts.currency} minor units needs a supervisor.",
            )
        )
    if facts.threat:
        needs.append(_threat_review("CRD-APPROVAL-THREAT"))
    if facts.case_type == CaseType.NOD and facts.amount_minor > limits.nod_leadership_over_minor:
        needs.append(
            _nod_leadership("CRD-APPROVAL-NOD-LEADERSHIP", limits, facts.currency, "credit")
        )
    reasons = tuple(need.rule_id for need in needs) or ("CRD-WITHIN-AGENT-LIMIT",)
    return CreditDecision(reasons=reasons, approvals=tuple(needs))


def decide_package_restoration(justification: str | None) -> CreditDecision:
    """A grandfathered package is no longer sold, so bringing one back is always a
    manager's call, never an agent's."""
    _require_justification(justification)
    return CreditDecision(
        reasons=("CRD-PACKAGE-RESTORATION",),
        approvals=(
            ApprovalNeed(
                Approver.MANAGER,
                "CRD-PACKAGE-RESTORATION",
                "Restoring a grandfathered package needs a manager.",
            ),
        ),
    )


def _decided(
    path: Path,
    reasons: tuple[str, ...],
    *,
    plan_correction: bool = False,
    approvals: tuple[ApprovalNeed, ...] = (),
) -> RefundDecision:
    return RefundDecision(
        path=path,
        downgrade_to_basic=path not in KEEPS_PLAN,
        plan_correction=plan_correction,
        reasons=reasons,
        approvals=approvals,
    )


def _threat_review(rule_id: str) -> ApprovalNeed:
    return ApprovalNeed(
        Approver.SUPERVISOR,
        rule_id,
        "The complaint carries a threat; the designated supervisor reviews it before "
        "anything is issued.",
    )


def _nod_leadership(rule_id: str, limits: CurrencyLimits, currency: str, what: str) -> ApprovalNeed:
    return ApprovalNeed(
        Approver.LEADERSHIP,
        rule_id,
        f"A {what} over {limits.nod_leadership_over_minor} {currency} minor units on a "
        "NOD case needs leadership approval.",
    )


def _limits_for(currency: str, policy: RefundPolicy) -> CurrencyLimits:
    limits = policy.currencies.get(currency)
    if limits is None:
        raise UnsupportedCurrency(
            f"the refund policy {policy.version} has no limits for {currency!r}; "
            f"it covers {', '.join(sorted(policy.currencies))}"
        )
    return limits


def _require_justification(justification: str | None) -> None:
    if justification is None or not justification.strip():
        raise JustificationRequired("a written justification is required")


def _require_non_negative(amount_minor: int) -> None:
    if amount_minor < 0:
        raise InvalidFacts(f"an amount cannot be negative: {amount_minor}")
