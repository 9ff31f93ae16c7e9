"""Which cases QA reviews (domain reference section 7). Pure.

Every escalation and every critical flow is reviewed; other handled cases are drawn at
random. The draw is HMAC-SHA256 of the case id under the policy's seed, so it is
reproducible by whoever holds the seed and the same on every replica and every replay.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from uuid import UUID

from casetrail.contracts.events import QaSampleReason
from casetrail.triage.policy import QaPolicy

PARTS_PER_MILLION = 1_000_000


@dataclass(frozen=True)
class QaSelection:
    reason: QaSampleReason
    rule_id: str
    draw_ppm: int | None = None
    rate_ppm: int | None = None


def seed_id(policy: QaPolicy) -> str:
    """Names the seed in events without revealing it."""
    return hashlib.sha256(policy.seed.get_secret_value().encode()).hexdigest()[:16]


def draw_ppm(policy: QaPolicy, case_id: UUID) -> int:
    digest = hmac.new(policy.seed.get_secret_value().encode(), case_id.bytes, hashlib.sha256)
    return int.from_bytes(digest.digest()[:8], "big") % PARTS_PER_MILLION


def on_escalation(policy: QaPolicy) -> QaSelection:
    return QaSelection(QaSampleReason.ESCALATION, policy.rule_ids.escalation)


def on_resolution(
    policy: QaPolicy, case_id: UUID, severity: str, case_type: str
) -> QaSelection | None:
    """A resolved case's selection: critical flows always, others by the draw."""
    critical = severity in policy.critical_severities or case_type in policy.critical_case_types
    if critical:
        return QaSelection(QaSampleReason.CRITICAL, policy.rule_ids.critical)
    draw, rate = draw_ppm(policy, case_id), policy.random_rate_ppm
    if draw < rate:
        return QaSelection(QaSampleReason.RANDOM, policy.rule_ids.random, draw, rate)
    return None
