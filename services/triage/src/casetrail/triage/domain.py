"""Classifying a complaint: pure rules over the case and the policy, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.contracts.events import CaseOpened, CaseType, Severity
from casetrail.runtime.eventstore import publish
from casetrail.triage.policy import TriagePolicy

SEVERITY_ORDER = (Severity.S1, Severity.S2, Severity.S3, Severity.S4)


@dataclass(frozen=True)
class Classification:
    severity: Severity
    case_type: CaseType
    high_priority: bool
    tier: int
    phone_contact_within_minutes: int | None
    rules_fired: tuple[str, ...]
    kind: str = "ESL"
    tags: tuple[str, ...] = ()
    vulnerabilities: tuple[str, ...] = ()


@cache
def _phrase(keyword: str) -> re.Pattern[str]:
    return re.compile(r"\b" + re.escape(keyword.lower()) + r"\b")


def classify(case: CaseOpened, policy: TriagePolicy) -> Classification:
    text = f"{case.subject}\n{case.description}".lower()
    fired = [
        rule
        for rule in policy.severity_rules
        if any(_phrase(k).search(text) for k in rule.keywords)
    ]
    severity = min(
        (rule.severity for rule in fired),
        key=SEVERITY_ORDER.index,
        default=policy.default_severity,
    )
    # Only the rules that decided the severity explain it; weaker ones are noise.
    deciding = [rule for rule in fired if rule.severity == severity]
    phone_minutes = min(
        (r.phone_contact_within_minutes for r in deciding if r.phone_contact_within_minutes),
        default=None,
    )
    case_type = policy.case_types.get(case.channel.value, policy.case_types["default"])
    rule_ids = [r.id for r in deciding] or [f"SEV-DEFAULT-{severity.value}"]
    rule_ids.append(f"TYPE-{case_type.value.upper()}")
    high_priority = (
        case_type in policy.priority.high_priority_case_types
        or severity in policy.priority.high_priority_severities
    )
    tier = policy.default_tier
    for rule in policy.tier_rules:
        if (
            case_type in rule.case_types
            or severity in rule.severities
            or set(rule.when_rules) & set(rule_ids)
        ):
            tier = rule.tier
            rule_ids.append(rule.id)
            break
    markers = _source_tags(case)
    vulnerable = [r for r in policy.vulnerability_rules if set(r.markers) & markers]
    for rule in vulnerable:
        rule_ids.append(rule.id)
        high_priority = True
        tier = max(tier, rule.minimum_tier or tier)
    quick_hit = (
        case.channel in policy.kind.esli_channels
        and severity in policy.kind.esli_severities
        and not high_priority
    )
    kind = "ESLI" if quick_hit else "ESL"
    rule_ids.append(f"KIND-{kind}")
    return Classification(
        severity=severity,
        case_type=case_type,
        high_priority=high_priority,
        tier=tier,
        phone_contact_within_minutes=phone_minutes,
        rules_fired=tuple(rule_ids),
        kind=kind,
        tags=(policy.complaint_tag,),
        vulnerabilities=tuple(sorted({m for r in vulnerable for m in r.markers} & markers)),
    )


def _source_tags(case: CaseOpened) -> set[str]:
    tags = case.source.get("tags")
    return {str(tag) for tag in tags} if isinstance(tags, list) else set()


class CaseTriage(Aggregate):
    """Triage's record of one case: how it was classified, and why."""

    @staticmethod
    def create_id(case_id: UUID) -> UUID:
        return case_id

    @event("Triaged")
    def __init__(
        self,
        *,
        case_id: UUID,
        severity: str,
        case_type: str,
        high_priority: bool,
        tier: int,
        channel: str,
        opened_at: datetime,
        phone_contact_within_minutes: int | None,
        rules_fired: list[str],
        policy_version: str,
        correlation_id: UUID,
        causation_id: UUID | None,
        kind: str = "ESL",
        tags: list[str] | None = None,
        vulnerabilities: list[str] | None = None,
        # Whose personal data the case's words are: sealed under their key, erased with it.
        customer_id: UUID | None = None,
    ) -> None:
        self.case_id = case_id
        self.customer_id = customer_id
        self.severity = severity
        self.case_type = case_type
        self.high_priority = high_priority
        self.tier = tier
        self.channel = channel
        self.opened_at = opened_at
        self.rules_fired = rules_fired
        self.policy_version = policy_version
        self.kind = kind
        self.correlation_id = correlation_id
        self.status: str | None = None
        self.assignee: str | None = None
        self.partner: str | None = None
        self.assignment_kind: str | None = None
        self.team: str | None = None
        self.next_action: str | None = None
        self.resolved_at: datetime | None = None
        self.customer_confirmed = False
        self.csat_score: int | None = None
        self.survey_id: UUID | None = None
        self.shift_ends_reported: list[datetime] = []
        self.qa_sampled: str | None = None
        self.qa_sampled_at: datetime | None = None
        self.qa_scorecards = 0
        self.updated_at = opened_at

    @event("Assigned")
    def record_assignment(
        self,
        *,
        case_id: UUID,
        agent_id: str | None,
        partner_id: str | None,
        assignment_kind: str,
        team: str | None,
        status: str,
        assigned_by: str,
        reason: str | None,
        rules_fired: list[str],
        assigned_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.assignee, self.partner, self.team = agent_id, partner_id, team
        self.assignment_kind = assignment_kind
        self.status = status
        self.rules_fired = [*self.rules_fired, *rules_fired]
        self.updated_at = assigned_at

    @event("StatusChanged")
    def record_status(
        self,
        *,
        case_id: UUID,
        from_status: str,
        to_status: str,
        changed_by: str,
        reason: str | None,
        customer_confirmed: bool,
        changed_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.status = to_status
        self.customer_confirmed = self.customer_confirmed or customer_confirmed
        if to_status == "Resolved":
            self.resolved_at = changed_at
        self.updated_at = changed_at

    @event("Escalated")
    def record_escalation(
        self,
        *,
        case_id: UUID,
        from_tier: int,
        to_tier: int,
        reason: str,
        rule_id: str,
        escalated_by: str,
        escalated_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.tier = to_tier
        self.rules_fired = [*self.rules_fired, rule_id]
        self.updated_at = escalated_at

    @event("Reclassified")
    def record_reclassification(
        self,
        *,
        case_id: UUID,
        from_severity: str,
        severity: str,
        from_case_type: str,
        case_type: str,
        high_priority: bool,
        reason: str,
        reclassified_by: str,
        reclassified_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.severity = severity
        self.case_type = case_type
        self.high_priority = high_priority
        self.updated_at = reclassified_at

    @event("WorklogEntryAdded")
    def record_worklog(
        self,
        *,
        case_id: UUID,
        entry_id: UUID,
        at: datetime,
        issue_type: str,
        action: str,
        outcome: str,
        author: str,
        next_action: str | None,
        correlation_id: UUID,
        causation_id: UUID | None,
        customer_id: UUID | None = None,
    ) -> None:
        self.next_action = next_action or self.next_action
        self.updated_at = at

    @event("NextActionSet")
    def record_next_action(
        self,
        *,
        case_id: UUID,
        next_action: str,
        set_by: str,
        set_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.next_action = next_action
        self.updated_at = set_at

    @event("SatisfactionSurveyRequested")
    def record_survey_request(
        self,
        *,
        case_id: UUID,
        survey_id: UUID,
        due_at: datetime,
        requested_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.survey_id = survey_id

    @event("SatisfactionRecorded")
    def record_satisfaction(
        self,
        *,
        case_id: UUID,
        survey_id: UUID,
        score: int,
        feedback: str | None,
        recorded_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
        customer_id: UUID | None = None,
    ) -> None:
        self.csat_score = score

    @event("LeftAssignedAtShiftEnd")
    def record_left_assigned(
        self,
        *,
        case_id: UUID,
        agent_id: str,
        shift_ended_at: datetime,
        reported_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.shift_ends_reported = [*self.shift_ends_reported, shift_ended_at]

    @event("QaSampled")
    def record_qa_sampled(
        self,
        *,
        case_id: UUID,
        reason: str,
        rule_id: str,
        seed_id: str,
        draw_ppm: int | None,
        rate_ppm: int | None,
        policy_version: str,
        sampled_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.qa_sampled = reason
        self.qa_sampled_at = sampled_at

    @event("QaScored")
    def record_qa_scorecard(
        self,
        *,
        case_id: UUID,
        scorecard_id: UUID,
        reviewer: str,
        accuracy: int,
        policy_compliance: int,
        tone: int,
        closure_quality: int,
        notes: str | None,
        scored_at: datetime,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.qa_scorecards += 1


for aggregate_event, published_as in (
    (CaseTriage.Triaged, contract.CaseTriaged),
    (CaseTriage.Assigned, contract.CaseAssigned),
    (CaseTriage.StatusChanged, contract.CaseStatusChanged),
    (CaseTriage.Escalated, contract.CaseEscalated),
    (CaseTriage.Reclassified, contract.CaseReclassified),
    (CaseTriage.WorklogEntryAdded, contract.WorklogEntryAdded),
    (CaseTriage.NextActionSet, contract.NextActionSet),
    (CaseTriage.SatisfactionSurveyRequested, contract.SatisfactionSurveyRequested),
    (CaseTriage.SatisfactionRecorded, contract.SatisfactionRecorded),
    (CaseTriage.LeftAssignedAtShiftEnd, contract.CaseLeftAssignedAtShiftEnd),
    (CaseTriage.QaSampled, contract.QaSampled),
    (CaseTriage.QaScored, contract.QaScored),
):
    publish(aggregate_event, published_as)


def triage(
    case: CaseOpened, policy: TriagePolicy, correlation_id: UUID, causation_id: UUID
) -> CaseTriage:
    decision = classify(case, policy)
    return CaseTriage(
        case_id=case.case_id,
        severity=decision.severity.value,
        case_type=decision.case_type.value,
        high_priority=decision.high_priority,
        tier=decision.tier,
        channel=case.channel.value,
        opened_at=case.opened_at,
        phone_contact_within_minutes=decision.phone_contact_within_minutes,
        rules_fired=list(decision.rules_fired),
        policy_version=policy.version,
        correlation_id=correlation_id,
        causation_id=causation_id,
        kind=decision.kind,
        tags=list(decision.tags),
        vulnerabilities=list(decision.vulnerabilities),
        customer_id=case.customer_id,
    )
