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
    return Classification(
        severity=severity,
        case_type=case_type,
        high_priority=high_priority,
        tier=tier,
        phone_contact_within_minutes=phone_minutes,
        rules_fired=tuple(rule_ids),
    )


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
    ) -> None:
        self.case_id = case_id
        self.severity = severity
        self.case_type = case_type
        self.high_priority = high_priority
        self.tier = tier
        self.channel = channel
        self.rules_fired = rules_fired
        self.policy_version = policy_version


publish(CaseTriage.Triaged, contract.CaseTriaged)


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
    )
