"""Refund approvals follow the policy's roles, through the real stack."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

NOT_SATISFIED = {
    "reason": "not_satisfied",
    "usage": {"logged_in": False, "reports_pulled": False, "build_it_used": False},
}


def as_(stack: Any, role: str, subject: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token(role, subject=subject)}"}


def a_known_case(stack: Any, wait_for: Any, channel: str) -> str:
    body = {"channel": channel, "customer_ref": "r-1", "subject": "Refund", "description": "x"}
    case_id = httpx.post(
        f"{stack.service_url('intake')}/v1/cases", json=body, headers=stack.auth_headers("channel")
    ).json()["case_id"]
    probe = {"amount": {"amount_minor": 1, "currency": "JPY"}, **NOT_SATISFIED}
    url = f"{stack.service_url('refunds')}/v1/cases/{case_id}/refunds"
    # 422 (no JPY policy) rather than 404 once refunds has learned of the case.
    wait_for(
        lambda: httpx.post(url, json=probe, headers=stack.auth_headers("agent")).status_code == 422
    )
    return case_id


def request_refund(
    stack: Any, case_id: str, amount: int, headers: dict[str, str]
) -> dict[str, Any]:
    body = {"amount": {"amount_minor": amount, "currency": "USD"}, **NOT_SATISFIED}
    url = f"{stack.service_url('refunds')}/v1/cases/{case_id}/refunds"
    response = httpx.post(url, json=body, headers=headers)
    assert response.status_code == 202, response.text
    return response.json()


def review(
    stack: Any, refund_id: str, headers: dict[str, str], approve: bool = True
) -> httpx.Response:
    url = f"{stack.service_url('refunds')}/v1/refunds/{refund_id}/review"
    return httpx.post(
        url, json={"approve": approve, "reason": "checked the account"}, headers=headers
    )


def test_a_refund_over_200_is_settled_by_a_supervisor_who_did_not_ask_for_it(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "email")
    held = request_refund(stack, case_id, 25_000, as_(stack, "agent", "agent-1"))
    assert held["outcome"] == "pending_review" and held["requested_by"] == "agent-1"

    assert review(stack, held["refund_id"], as_(stack, "agent", "agent-2")).status_code == 403
    assert review(stack, held["refund_id"], as_(stack, "auditor", "aud-1")).status_code == 403
    approved = review(stack, held["refund_id"], as_(stack, "supervisor", "sup-1"))
    assert approved.status_code == 200
    assert approved.json()["outcome"] == "approved" and approved.json()["reviewed_by"] == "sup-1"
    again = review(stack, held["refund_id"], as_(stack, "supervisor", "sup-2"), approve=False)
    assert again.status_code == 409 and again.json()["error"] == "not_awaiting_review"

    history = f"{stack.service_url('audit')}/v1/cases/{case_id}/history"
    auditor = stack.auth_headers("auditor")
    types = wait_for(
        lambda: (
            "casetrail.refund.reviewed.v1"
            in (t := [r["type"] for r in httpx.get(history, headers=auditor).json()["records"]])
            and t
        )
    )
    assert types.count("casetrail.refund.reviewed.v1") == 1


def test_a_supervisor_cannot_approve_their_own_refund(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "chat")
    held = request_refund(stack, case_id, 30_000, as_(stack, "supervisor", "sup-9"))
    refused = review(stack, held["refund_id"], as_(stack, "supervisor", "sup-9"))
    assert refused.status_code == 403 and refused.json()["error"] == "review_not_permitted"


def test_a_nod_credit_over_500_needs_leadership(stack, wait_for):
    case_id = a_known_case(stack, wait_for, "nod")
    held = request_refund(stack, case_id, 60_000, as_(stack, "agent", "agent-3"))
    assert held["reviewer_role"] == "leadership"
    refused = review(stack, held["refund_id"], as_(stack, "supervisor", "sup-1"))
    assert refused.status_code == 403 and refused.json()["required_role"] == "leadership"
    assert review(stack, held["refund_id"], as_(stack, "leadership", "vp-1")).status_code == 200
