"""Refunds and credits through the real stack: approvals by role, four eyes, paid once."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.e2e

NOT_SATISFIED = {
    "reason": "not_satisfied",
    "usage": {"logged_in": False, "reports_pulled": False, "build_it_used": False},
}


def as_(stack: Any, role: str, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role, subject=subject)}"}


def refunds_url(stack: Any, path: str) -> str:
    return f"{stack.service_url('refunds')}/v1{path}"


def a_known_case(stack: Any, wait_for: Any, channel: str) -> str:
    body = {"channel": channel, "customer_ref": "r-1", "subject": "Refund", "description": "x"}
    response = httpx.post(
        f"{stack.service_url('intake')}/v1/cases", json=body, headers=stack.auth_headers("channel")
    )
    assert response.status_code == 202, response.text
    case_id = response.json()["case_id"]
    url = refunds_url(stack, f"/cases/{case_id}/refunds")
    # Refunds learns of the case from intake's events: 200 (an empty list) once it has.
    wait_for(lambda: httpx.get(url, headers=stack.auth_headers("agent")).status_code == 200)
    return case_id


def request_refund(
    stack: Any, case_id: str, amount: int, headers: dict[str, str], **facts: Any
) -> dict[str, Any]:
    body = {
        "amount": {"amount_minor": amount, "currency": "USD"},
        "charged_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
        "plan": "Premium",
        **NOT_SATISFIED,
        **facts,
    }
    response = httpx.post(
        refunds_url(stack, f"/cases/{case_id}/refunds"), json=body, headers=headers
    )
    assert response.status_code == 202, response.text
    return response.json()


def settle(
    stack: Any, refund_id: str, headers: dict[str, str], approve: bool = True
) -> httpx.Response:
    verb = "approve" if approve else "reject"
    return httpx.post(
        refunds_url(stack, f"/refunds/{refund_id}/{verb}"),
        json={"reason": "checked the account"},
        headers=headers,
    )


def read(stack: Any, refund_id: str) -> dict[str, Any]:
    response = httpx.get(
        refunds_url(stack, f"/refunds/{refund_id}"), headers=stack.auth_headers("agent")
    )
    response.raise_for_status()
    return response.json()


def payouts(stack: Any, refund_id: str) -> int:
    with psycopg.connect(stack.database_url("refunds")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM refund_payouts WHERE refund_id = %s", (refund_id,)
        ).fetchone()
    return int(row[0])


def audit_types(stack: Any, case_id: str) -> list[str]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
        params={"limit": 1000},
        headers=stack.auth_headers("auditor"),
    )
    return [r["type"] for r in response.json()["records"]] if response.status_code == 200 else []


def test_a_refund_over_200_is_approved_by_a_supervisor_who_did_not_ask_then_paid_once(
    stack, wait_for
):
    case_id = a_known_case(stack, wait_for, "email")
    held = request_refund(stack, case_id, 20_001, as_(stack, "agent", "agent-1"))
    assert (held["status"], held["awaiting"]) == ("awaiting_approval", ["supervisor"])

    pending = httpx.get(refunds_url(stack, "/approvals"), headers=as_(stack, "supervisor", "s"))
    assert held["refund_id"] in {r["refund_id"] for r in pending.json()}
    assert settle(stack, held["refund_id"], as_(stack, "agent", "agent-2")).status_code == 403
    assert settle(stack, held["refund_id"], as_(stack, "auditor", "aud-1")).status_code == 403
    approved = settle(stack, held["refund_id"], as_(stack, "supervisor", "sup-1"))
    assert approved.status_code == 200, approved.text
    again = settle(stack, held["refund_id"], as_(stack, "supervisor", "sup-2"), approve=False)
    assert again.status_code == 409 and again.json()["error"] == "not_awaiting_approval"

    wait_for(lambda: read(stack, held["refund_id"])["status"] == "issued")
    assert payouts(stack, held["refund_id"]) == 1
    types = wait_for(
        lambda: (t := audit_types(stack, case_id)) and "casetrail.refund.issued.v1" in t and t
    )
    assert types.count("casetrail.refund.approved.v1") == 1
    assert types.count("casetrail.refund.issued.v1") == 1
    assert types.index("casetrail.refund.downgrade_triggered.v1") < types.index(
        "casetrail.refund.decided.v2"
    )


def test_nobody_approves_their_own_request(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "email")
    held = request_refund(stack, case_id, 30_000, as_(stack, "supervisor", "sup-9"))
    refused = settle(stack, held["refund_id"], as_(stack, "supervisor", "sup-9"))
    assert refused.status_code == 403
    assert refused.json()["error"] == "approval_not_permitted"


def test_goodwill_keeps_the_plan_and_declining_it_downgrades(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "email")
    fault = {"reason": "technical_error", "technical_fault": True, "fault_resolved": True}
    offered = request_refund(stack, case_id, 4_000, as_(stack, "agent", "a-1"), **fault)
    assert offered["status"] == "goodwill_offered"
    declined = httpx.post(
        refunds_url(stack, f"/refunds/{offered['refund_id']}/goodwill"),
        json={"accepted": False},
        headers=as_(stack, "agent", "a-1"),
    )
    assert declined.status_code == 200, declined.text
    assert declined.json()["path"] == "dissatisfaction"
    types = wait_for(
        lambda: (t := audit_types(stack, case_id)) and "casetrail.refund.issued.v1" in t and t
    )
    assert (
        types.index("casetrail.refund.goodwill_offered.v1")
        < types.index("casetrail.refund.goodwill_declined.v1")
        < types.index("casetrail.refund.downgrade_triggered.v1")
    )


def test_a_nod_credit_over_500_waits_for_leadership(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "nod")
    response = httpx.post(
        refunds_url(stack, f"/cases/{case_id}/credits"),
        json={"amount": {"amount_minor": 60_000, "currency": "USD"}, "justification": "NOD"},
        headers=as_(stack, "agent", "agent-3"),
    )
    assert response.status_code == 202, response.text
    credit = response.json()
    # Over the agent's $300 limit (a supervisor) and a NOD credit over $500 (leadership).
    assert credit["awaiting"] == ["supervisor", "leadership"]
    approved = settle(stack, credit["refund_id"], as_(stack, "supervisor", "sup-1"))
    assert approved.json()["awaiting"] == ["leadership"]
    assert settle(stack, credit["refund_id"], as_(stack, "supervisor", "sup-2")).status_code == 403
    assert settle(stack, credit["refund_id"], as_(stack, "leadership", "vp-1")).status_code == 200
    wait_for(lambda: read(stack, credit["refund_id"])["status"] == "granted")


def test_a_credit_needs_a_justification(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "email")
    response = httpx.post(
        refunds_url(stack, f"/cases/{case_id}/credits"),
        json={"amount": {"amount_minor": 1_000, "currency": "USD"}, "justification": "  "},
        headers=as_(stack, "agent", "agent-3"),
    )
    assert response.status_code == 422
    assert response.json()["error"] == "refund_policy_refused"
    yen = httpx.post(
        refunds_url(stack, f"/cases/{case_id}/refunds"),
        json={
            "amount": {"amount_minor": 1_000, "currency": "JPY"},
            "charged_at": datetime.now(UTC).isoformat(),
            **NOT_SATISFIED,
        },
        headers=as_(stack, "agent", "agent-3"),
    )
    assert yen.status_code == 422 and "JPY" in yen.json()["message"]


def test_a_refund_is_paid_once_when_the_service_dies_between_approval_and_payout(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "email")
    # A payment run that would not come round for an hour: the approval lands, no payout.
    stack.stop_service("refunds")
    stack.start_service("refunds", {"REFUNDS_PAYOUT_POLL_SECONDS": "3600"})
    try:
        held = request_refund(stack, case_id, 25_000, as_(stack, "agent", "agent-7"))
        approved = settle(stack, held["refund_id"], as_(stack, "supervisor", "sup-7"))
        assert approved.status_code == 200 and approved.json()["status"] == "ready"
        time.sleep(1)
        assert payouts(stack, held["refund_id"]) == 0
        stack.kill_service("refunds")  # SIGKILL: no chance to finish anything
    finally:
        stack.start_service("refunds")
    wait_for(lambda: read(stack, held["refund_id"])["status"] == "issued")
    # Retries after the fact change nothing: the same request, the approval again, a restart.
    assert settle(stack, held["refund_id"], as_(stack, "supervisor", "sup-8")).status_code == 409
    stack.stop_service("refunds")
    stack.start_service("refunds")
    time.sleep(2)
    assert payouts(stack, held["refund_id"]) == 1
    types = wait_for(
        lambda: (t := audit_types(stack, case_id)) and "casetrail.refund.issued.v1" in t and t
    )
    assert types.count("casetrail.refund.issued.v1") == 1
