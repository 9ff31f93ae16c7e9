"""Commands on a triaged case: assign, move through the lifecycle, escalate, log work. Pure.

Each command checks the rules of the triage policy, then records small named events on
the `CaseTriage` aggregate; saving them is the store's business.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import NAMESPACE_URL, UUID, uuid5

from casetrail.contracts.events import CaseType, Severity
from casetrail.runtime.service import DomainError
from casetrail.triage import quality
from casetrail.triage.assignment import AssignmentDecision
from casetrail.triage.domain import CaseTriage
from casetrail.triage.lifecycle import (
    ConfirmationRequired,
    IllegalTransition,
    ReopenWindowPassed,
    Status,
    WorklogEntry,
    allowed_next,
    check_transition,
    status_after_reassignment,
    survey_due_at,
    validate_csat,
)
from casetrail.triage.policy import TriagePolicy

MANUAL_ESCALATION = "ESC-SUPERVISOR"
MANUAL_REASSIGNMENT = "ASSIGN-SUPERVISOR"


class TransitionNotAllowed(DomainError):
    status_code = 409
    code = "illegal_transition"


class CaseNotAssignedYet(DomainError):
    status_code = 409
    code = "not_assigned"


class InvalidEscalation(DomainError):
    status_code = 409
    code = "invalid_escalation"


class NoSurveyRequested(DomainError):
    status_code = 409
    code = "no_survey_requested"


class InvalidScore(DomainError):
    status_code = 422
    code = "invalid_score"


def assign(
    case: CaseTriage,
    decision: AssignmentDecision,
    *,
    assigned_by: str,
    reason: str | None,
    now: datetime,
) -> None:
    current = Status(case.status) if case.status else None
    status = status_after_reassignment(current) if current else Status.ASSIGNED
    case.record_assignment(
        case_id=case.id,
        agent_id=decision.primary,
        partner_id=decision.partner,
        assignment_kind=decision.kind.value,
        team=decision.team,
        status=status.value,
        assigned_by=assigned_by,
        reason=reason,
        rules_fired=list(decision.rules_fired),
        assigned_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )


def change_status(
    case: CaseTriage,
    requested: Status,
    policy: TriagePolicy,
    *,
    changed_by: str,
    reason: str | None,
    customer_confirmed: bool,
    now: datetime,
) -> None:
    """Moves the case on; resolving it also schedules the satisfaction survey."""
    if case.status is None:
        raise CaseNotAssignedYet("the case has not been assigned yet", case_id=str(case.id))
    current = Status(case.status)
    try:
        check_transition(
            policy.lifecycle,
            current,
            requested,
            customer_confirmed=customer_confirmed or case.customer_confirmed,
            resolved_at=case.resolved_at,
            now=now,
        )
    except IllegalTransition as refused:
        raise TransitionNotAllowed(
            str(refused),
            current=current.value,
            requested=requested.value,
            allowed=[s.value for s in refused.allowed],
            rule_id=refused.rule_id,
        ) from None
    except (ConfirmationRequired, ReopenWindowPassed) as refused:
        raise TransitionNotAllowed(
            str(refused),
            current=current.value,
            requested=requested.value,
            allowed=[s.value for s in allowed_next(policy.lifecycle, current)],
            rule_id=refused.rule_id,
        ) from None
    case.record_status(
        case_id=case.id,
        from_status=current.value,
        to_status=requested.value,
        changed_by=changed_by,
        reason=reason,
        customer_confirmed=customer_confirmed,
        changed_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )
    if requested is Status.RESOLVED:
        handled = quality.on_resolution(policy.qa, case.id, case.severity, case.case_type)
        _sample_for_qa(case, policy, handled, now)
        case.record_survey_request(
            case_id=case.id,
            survey_id=uuid5(NAMESPACE_URL, f"casetrail:survey:{case.id}:{case.version}"),
            due_at=survey_due_at(policy.lifecycle, now),
            requested_at=now,
            correlation_id=case.correlation_id,
            causation_id=None,
        )


def escalate(
    case: CaseTriage,
    policy: TriagePolicy,
    *,
    to_tier: int,
    reason: str,
    escalated_by: str,
    rule_id: str,
    now: datetime,
    causation_id: UUID | None = None,
) -> None:
    if to_tier <= case.tier:
        raise InvalidEscalation(
            f"escalation goes up: the case is at tier {case.tier}", tier=case.tier
        )
    case.record_escalation(
        case_id=case.id,
        from_tier=case.tier,
        to_tier=to_tier,
        reason=reason,
        rule_id=rule_id,
        escalated_by=escalated_by,
        escalated_at=now,
        correlation_id=case.correlation_id,
        causation_id=causation_id,
    )
    _sample_for_qa(case, policy, quality.on_escalation(policy.qa), now)


def _sample_for_qa(
    case: CaseTriage, policy: TriagePolicy, selection: quality.QaSelection | None, now: datetime
) -> None:
    """A case is sampled once, for the first reason it qualifies."""
    if selection is None or case.qa_sampled is not None:
        return
    case.record_qa_sampled(
        case_id=case.id,
        reason=selection.reason.value,
        rule_id=selection.rule_id,
        seed_id=quality.seed_id(policy.qa),
        draw_ppm=selection.draw_ppm,
        rate_ppm=selection.rate_ppm,
        policy_version=policy.version,
        sampled_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )


class NotSampledForQa(DomainError):
    status_code = 409
    code = "not_sampled_for_qa"


class OwnCaseReview(DomainError):
    status_code = 403
    code = "own_case_review"


@dataclass(frozen=True)
class QaScorecard:
    accuracy: int
    policy_compliance: int
    tone: int
    closure_quality: int
    notes: str | None


def score_qa(
    case: CaseTriage, scorecard: QaScorecard, *, reviewer: str, scorecard_id: UUID, now: datetime
) -> None:
    """Records a reviewer's scorecard; nobody reviews a case they worked themselves."""
    if case.qa_sampled is None:
        raise NotSampledForQa("the case was not sampled for QA", case_id=str(case.id))
    if reviewer in (case.assignee, case.partner):
        raise OwnCaseReview("a case is reviewed by someone who did not work it", reviewer=reviewer)
    case.record_qa_scorecard(
        case_id=case.id,
        scorecard_id=scorecard_id,
        reviewer=reviewer,
        accuracy=scorecard.accuracy,
        policy_compliance=scorecard.policy_compliance,
        tone=scorecard.tone,
        closure_quality=scorecard.closure_quality,
        notes=scorecard.notes,
        scored_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )


class NothingToReclassify(DomainError):
    status_code = 409
    code = "nothing_to_reclassify"


def reclassify(
    case: CaseTriage,
    *,
    severity: Severity | None,
    case_type: CaseType | None,
    policy: TriagePolicy,
    reason: str,
    reclassified_by: str,
    now: datetime,
) -> None:
    """Corrects severity or type; high priority follows the policy's rule for the new facts."""
    new_severity = severity or Severity(case.severity)
    new_type = case_type or CaseType(case.case_type)
    if (new_severity.value, new_type.value) == (case.severity, case.case_type):
        raise NothingToReclassify("the case already has this severity and type")
    case.record_reclassification(
        case_id=case.id,
        from_severity=case.severity,
        severity=new_severity.value,
        from_case_type=case.case_type,
        case_type=new_type.value,
        high_priority=new_type in policy.priority.high_priority_case_types
        or new_severity in policy.priority.high_priority_severities,
        reason=reason,
        reclassified_by=reclassified_by,
        reclassified_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )


def log_work(case: CaseTriage, entry: WorklogEntry, entry_id: UUID) -> None:
    case.record_worklog(
        case_id=case.id,
        entry_id=entry_id,
        at=entry.at,
        issue_type=entry.issue_type,
        action=entry.action,
        outcome=entry.outcome,
        author=entry.author,
        next_action=entry.next_action,
        correlation_id=case.correlation_id,
        causation_id=None,
        customer_id=case.customer_id,
    )


def set_next_action(case: CaseTriage, next_action: str, *, set_by: str, now: datetime) -> None:
    case.record_next_action(
        case_id=case.id,
        next_action=next_action,
        set_by=set_by,
        set_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )


def record_csat(
    case: CaseTriage, policy: TriagePolicy, *, score: int, feedback: str | None, now: datetime
) -> None:
    if case.survey_id is None:
        raise NoSurveyRequested("no satisfaction survey was requested for this case")
    try:
        validate_csat(policy.lifecycle, score)
    except ValueError as error:
        raise InvalidScore(str(error), scale=list(policy.lifecycle.csat_scale)) from None
    case.record_satisfaction(
        case_id=case.id,
        survey_id=case.survey_id,
        score=score,
        feedback=feedback,
        recorded_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
        customer_id=case.customer_id,
    )


def report_left_assigned(
    case: CaseTriage, *, agent_id: str, shift_ended_at: datetime, now: datetime
) -> bool:
    """Records that a shift ended with the case still Assigned, once per shift end."""
    if case.status != Status.ASSIGNED.value or shift_ended_at in case.shift_ends_reported:
        return False
    case.record_left_assigned(
        case_id=case.id,
        agent_id=agent_id,
        shift_ended_at=shift_ended_at,
        reported_at=now,
        correlation_id=case.correlation_id,
        causation_id=None,
    )
    return True
