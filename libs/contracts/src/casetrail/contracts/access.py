"""Who may call what: the one permission table every service enforces.

Keys are (service, HTTP method, route path template). A route missing from this table
is refused at start, so no door is ever left unlocked by omission. Finer rules that
depend on the data (a refund's amount, who asked for it) belong to each domain.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Role(StrEnum):
    CHANNEL = "channel"  # channel adapters posting events to intake
    AGENT = "agent"
    SUPERVISOR = "supervisor"
    LEADERSHIP = "leadership"
    MANAGER = "manager"  # restores grandfathered packages, among a supervisor's powers
    AUDITOR = "auditor"  # read-only: history and export
    OPS = "ops"  # runs the services: metrics, dead letters


STAFF: Final = frozenset({Role.AGENT, Role.SUPERVISOR, Role.MANAGER, Role.LEADERSHIP})
CASE_READERS: Final = STAFF | {Role.AUDITOR}
MANAGERS: Final = frozenset({Role.SUPERVISOR, Role.MANAGER, Role.LEADERSHIP})
OVERSIGHT: Final = frozenset({Role.SUPERVISOR, Role.LEADERSHIP, Role.AUDITOR})

# Answered without a credential: liveness, readiness and the API's own description.
PUBLIC_PATHS: Final = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)

Route = tuple[str, str]

PERMISSIONS: Final[dict[str, dict[Route, frozenset[Role]]]] = {
    "intake": {
        ("POST", "/v1/cases"): frozenset({Role.CHANNEL}),
        ("POST", "/v1/channels/{channel}/messages"): frozenset({Role.CHANNEL}),
        ("POST", "/v1/email/messages"): frozenset({Role.CHANNEL}),
        ("POST", "/v1/regulators/cfpb/complaints"): frozenset({Role.CHANNEL, Role.OPS}),
        ("GET", "/v1/cases/{case_id}"): CASE_READERS,
        ("POST", "/v1/attachments"): STAFF | {Role.CHANNEL},
        ("GET", "/v1/attachments/{sha256}"): CASE_READERS,
        ("GET", "/v1/customers/{customer_id}"): CASE_READERS,
        ("PATCH", "/v1/customers/{customer_id}/contacts"): STAFF,
        # Erasure destroys what no one can restore: not an agent's call alone.
        ("POST", "/v1/customers/{customer_id}/erasure"): MANAGERS,
    },
    "triage": {
        ("GET", "/v1/cases/{case_id}/triage"): CASE_READERS,
        ("GET", "/v1/policy"): CASE_READERS | {Role.OPS},
        ("GET", "/v1/cases"): CASE_READERS,
        ("GET", "/v1/my/cases"): STAFF,
        ("GET", "/v1/my/dual-cases"): STAFF,
        ("POST", "/v1/cases/{case_id}/status"): STAFF,
        ("POST", "/v1/cases/{case_id}/worklog"): STAFF,
        ("PUT", "/v1/cases/{case_id}/next-action"): STAFF,
        ("POST", "/v1/cases/{case_id}/assignment"): MANAGERS,
        ("POST", "/v1/cases/{case_id}/escalation"): MANAGERS,
        # Section 7's reviews: supervisors and managers score, auditors may read the queue.
        ("GET", "/v1/qa/queue"): MANAGERS | {Role.AUDITOR},
        ("POST", "/v1/cases/{case_id}/qa-scorecard"): MANAGERS,
        ("PUT", "/v1/cases/{case_id}/classification"): MANAGERS,
        # The customer's survey answer arrives through a channel adapter, or an agent keys it.
        ("POST", "/v1/cases/{case_id}/satisfaction"): STAFF | {Role.CHANNEL},
        ("GET", "/v1/agents"): STAFF | {Role.OPS},
        ("PUT", "/v1/agents/{agent_id}"): MANAGERS,
        ("GET", "/v1/reports/end-of-shift"): MANAGERS | {Role.AUDITOR},
    },
    "sla-timer": {
        ("GET", "/v1/cases/{case_id}/clocks"): CASE_READERS,
        ("POST", "/v1/cases/{case_id}/contact-attempts"): STAFF,
        ("GET", "/v1/sla/dashboard"): MANAGERS | {Role.AUDITOR},
    },
    "refunds": {
        ("POST", "/v1/cases/{case_id}/refunds"): STAFF,
        ("POST", "/v1/cases/{case_id}/credits"): STAFF,
        ("GET", "/v1/cases/{case_id}/refunds"): CASE_READERS,
        ("GET", "/v1/refunds/{refund_id}"): CASE_READERS,
        ("POST", "/v1/refunds/{refund_id}/goodwill"): STAFF,
        # Which approver a given request needs is the refund policy's call.
        ("GET", "/v1/approvals"): MANAGERS,
        ("POST", "/v1/refunds/{refund_id}/approve"): MANAGERS,
        ("POST", "/v1/refunds/{refund_id}/reject"): MANAGERS,
    },
    "audit": {
        ("GET", "/v1/cases/{case_id}/history"): OVERSIGHT,
        ("GET", "/v1/cases/{case_id}/verify"): OVERSIGHT | {Role.OPS},
        ("GET", "/v1/cases/{case_id}/state"): OVERSIGHT,
        ("GET", "/v1/cases/{case_id}/diff"): OVERSIGHT,
        ("GET", "/v1/cases/{case_id}/export"): OVERSIGHT,
        # The signed log holds hashes only: anyone checking it may read it.
        ("GET", "/v1/log/tree-heads/latest"): OVERSIGHT | {Role.OPS},
        ("POST", "/v1/log/tree-heads"): OVERSIGHT | {Role.OPS},
        ("GET", "/v1/log/tree-heads/{tree_size}"): OVERSIGHT | {Role.OPS},
        ("GET", "/v1/log/consistency"): OVERSIGHT | {Role.OPS},
        ("GET", "/v1/log/public-key"): OVERSIGHT | {Role.OPS},
        ("GET", "/v1/log/verify"): OVERSIGHT | {Role.OPS},
    },
}

# Routes a provider calls (Twilio, Meta, SendGrid): no Casetrail token, each authenticated
# by the provider's own signature, checked by the route before anything is recorded.
PROVIDER_SIGNED: Final[dict[str, frozenset[Route]]] = {
    "intake": frozenset(
        {
            ("POST", "/v1/webhooks/twilio"),
            ("GET", "/v1/webhooks/meta"),
            ("POST", "/v1/webhooks/meta"),
            ("POST", "/v1/webhooks/sendgrid"),
        }
    ),
}

OPERATIONS: Final[dict[Route, frozenset[Role]]] = {("GET", "/metrics"): frozenset({Role.OPS})}


def permissions_for(service: str) -> dict[Route, frozenset[Role]]:
    return {**PERMISSIONS[service], **OPERATIONS}
