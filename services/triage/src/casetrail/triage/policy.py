"""The triage policy file's schema, validated when the service starts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from casetrail.contracts.events import CaseType, Channel, Severity
from casetrail.runtime.models import Strict
from casetrail.triage.assignment import AssignmentPolicy
from casetrail.triage.lifecycle import LifecyclePolicy

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


class SeverityRule(Strict):
    id: str = Field(pattern=r"^[A-Z0-9-]+$")
    severity: Severity
    keywords: tuple[str, ...] = Field(min_length=1)
    phone_contact_within_minutes: int | None = Field(None, ge=1)


class TierRule(Strict):
    id: str = Field(pattern=r"^[A-Z0-9-]+$")
    tier: int = Field(ge=1, le=3)
    case_types: tuple[CaseType, ...] = ()
    severities: tuple[Severity, ...] = ()
    when_rules: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _has_a_condition(self) -> TierRule:
        if not (self.case_types or self.severities or self.when_rules):
            raise ValueError(f"tier rule {self.id} has no condition")
        return self


class VulnerabilityRule(Strict):
    """A marker of a vulnerable customer (e.g. CFPB's `Older American`) that raises priority."""

    id: str = Field(pattern=r"^[A-Z0-9-]+$")
    markers: tuple[str, ...] = Field(min_length=1)
    minimum_tier: int | None = Field(None, ge=1, le=3)


class KindRules(Strict):
    """ESLI, the quick hit resolved in the same interaction, versus a full ESL case."""

    esli_channels: tuple[Channel, ...]
    esli_severities: tuple[Severity, ...]


class Priority(Strict):
    high_priority_case_types: tuple[CaseType, ...]
    high_priority_severities: tuple[Severity, ...]


class QaRuleIds(Strict):
    random: str = Field(min_length=1)
    escalation: str = Field(min_length=1)
    critical: str = Field(min_length=1)


class QaPolicy(Strict):
    # Section 7's floor: a policy sampling less than 5% at random is refused at start.
    random_rate_ppm: int = Field(ge=50_000, le=1_000_000)
    seed: SecretStr = Field(min_length=8)
    critical_severities: tuple[Severity, ...]
    critical_case_types: tuple[CaseType, ...]
    rule_ids: QaRuleIds


class TriagePolicy(Strict):
    version: str = Field(min_length=1)
    default_severity: Severity
    default_tier: int = Field(ge=1, le=3)
    severity_rules: tuple[SeverityRule, ...]
    case_types: dict[str, CaseType]
    priority: Priority
    tier_rules: tuple[TierRule, ...]
    complaint_tag: str = Field(min_length=1)
    vulnerability_rules: tuple[VulnerabilityRule, ...]
    kind: KindRules
    lifecycle: LifecyclePolicy
    assignment: AssignmentPolicy
    qa: QaPolicy

    @model_validator(mode="after")
    def _consistent(self) -> TriagePolicy:
        ids = [r.id for r in (*self.severity_rules, *self.tier_rules, *self.vulnerability_rules)]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        unknown_channels = set(self.case_types) - {c.value for c in Channel} - {"default"}
        if unknown_channels:
            raise ValueError(f"case_types names unknown channels {sorted(unknown_channels)}")
        if "default" not in self.case_types:
            raise ValueError("case_types needs a default")
        severity_ids = {r.id for r in self.severity_rules}
        for rule in self.tier_rules:
            missing = set(rule.when_rules) - severity_ids
            if missing:
                raise ValueError(f"tier rule {rule.id} refers to unknown rules {sorted(missing)}")
        unknown_rules = set(self.assignment.skills_by_rule) - severity_ids
        if unknown_rules:
            raise ValueError(f"assignment names unknown rules {sorted(unknown_rules)}")
        return self


def load_policy(path: Path | None = None) -> TriagePolicy:
    with (path or DEFAULT_POLICY).open("rb") as file:
        return TriagePolicy.model_validate(tomllib.load(file))
