"""End-to-end: a complaint assigned on arrival and worked from Assigned to Closed with CSAT."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import psycopg
import pytest

from casetrail.triage import quality
from casetrail.triage.handlers import report_shift_ends
from casetrail.triage.policy import load_policy as load_triage_policy
from casetrail.triage.store import TriageApplication

pytestmark = pytest.mark.e2e

ALWAYS_ON_SHIFT = {
    "timezone": "UTC",
    "intervals": [{"weekday": d, "start": "00:00", "end": "24:00"} for d in range(7)],
}
EVERY_SKILL = ["regulatory", "legal", "executive", "fraud"]


def triage(stack: Any, path: str) -> str:
    return f"{stack.service_url('triage')}{path}"


def put_agent(stack: Any, agent_id: str, **overrides: Any) -> httpx.Response:
    agent = {
        "agent_id": agent_id,
        "name": agent_id,
        "team": "complaints",
        "skills": EVERY_SKILL,
        "tiers": [1, 2, 3],
        "shift": ALWAYS_ON_SHIFT,
        "capacity": 100_000,
    } | overrides
    return httpx.put(
        triage(stack, f"/v1/agents/{agent_id}"),
        json=agent,
        headers=stack.auth_headers("supervisor"),
    )


def open_message(stack: Any, email: str, body: str, **extra: Any) -> dict[str, Any]:
    response = httpx.post(
        f"{stack.service_url('intake')}/v1/channels/email/messages",
        json={"customer": {"email": email}, "body": body, **extra},
        headers=stack.auth_headers("channel"),
    )
    assert response.status_code == 202, response.text
    return response.json()


def triage_view(stack: Any, case_id: str) -> dict[str, Any] | None:
    response = httpx.get(
        triage(stack, f"/v1/cases/{case_id}/triage"), headers=stack.auth_headers("agent")
    )
    return response.json() if response.status_code == 200 else None


def audited_types(stack: Any, case_id: str) -> list[str]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
        params={"limit": 1000},
        headers=stack.auth_headers("auditor"),
    )
    return [r["type"] for r in response.json().get("records", [])]


def drawn_for_qa(case_id: str, view: dict[str, Any]) -> bool:
    policy = load_triage_policy()
    return (
        quality.on_resolution(policy.qa, uuid.UUID(case_id), view["severity"], view["case_type"])
        is not None
    )


def move(stack: Any, case_id: str, token: str, status: str, **extra: Any) -> httpx.Response:
    return httpx.post(
        triage(stack, f"/v1/cases/{case_id}/status"),
        json={"status": status, **extra},
        headers={"Authorization": f"Bearer {token}"},
    )


def test_a_case_goes_from_assigned_to_closed_with_csat(stack, wait_for):
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    # Only agents on this roster take cases; everyone else is at full capacity here.
    for other in httpx.get(triage(stack, "/v1/agents"), headers=stack.auth_headers("agent")).json():
        put_agent(stack, other["agent_id"], active=False)
    assert put_agent(stack, agent_id).status_code == 200
    token = stack.token("agent", subject=agent_id)
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    opened = open_message(stack, email, "My statement shows a fee I do not recognise.")
    case_id = opened["case_id"]

    view = wait_for(lambda: triage_view(stack, case_id), timeout=30)
    assert (view["status"], view["assignee"]) == ("Assigned", agent_id)
    assert "ASSIGN-LEAST-LOADED" in view["rules_fired"]
    mine = httpx.get(
        triage(stack, "/v1/my/cases"),
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {token}"},
    ).json()
    assert case_id in [c["case_id"] for c in mine]

    refused = move(stack, case_id, token, "Resolved")
    assert refused.status_code == 409
    assert refused.json()["error"] == "illegal_transition"
    assert refused.json()["allowed"] == ["Acknowledged", "Incomplete"]

    assert move(stack, case_id, token, "Acknowledged").status_code == 200
    assert move(stack, case_id, token, "Pending On").status_code == 200
    logged = httpx.post(
        triage(stack, f"/v1/cases/{case_id}/worklog"),
        json={
            "issue_type": "Billing",
            "action": "Checked the fee against the plan",
            "outcome": "Fee charged in error",
            "next_action": "Refund the fee",
        },
        headers={"Authorization": f"Bearer {token}"},
    )
    assert logged.status_code == 201, logged.text
    listed = httpx.get(
        triage(stack, "/v1/cases"),
        params={"next_action": "Refund the fee", "status": "Pending On", "limit": 1000},
        headers=stack.auth_headers("supervisor"),
    ).json()
    assert case_id in [c["case_id"] for c in listed]

    assert move(stack, case_id, token, "Resolved").status_code == 200
    unconfirmed = move(stack, case_id, token, "Closed")
    assert unconfirmed.status_code == 409
    assert unconfirmed.json()["rule_id"] == "LIFECYCLE-CLOSE-NEEDS-CONFIRMATION"
    closed = move(stack, case_id, token, "Closed", customer_confirmed=True)
    assert closed.status_code == 200, closed.text

    survey = triage(stack, f"/v1/cases/{case_id}/satisfaction")
    assert (
        httpx.post(survey, json={"score": 9}, headers=stack.auth_headers("channel")).status_code
        == 422
    )
    answered = httpx.post(
        survey, json={"score": 5, "feedback": "Quick"}, headers=stack.auth_headers("channel")
    )
    assert answered.json()["csat_score"] == 5

    expected = [
        "casetrail.case.opened.v1",
        "casetrail.case.triaged.v1",
        "casetrail.case.assigned.v1",
        "casetrail.case.status_changed.v1",
        "casetrail.case.status_changed.v1",
        "casetrail.case.worklog_entry_added.v1",
        "casetrail.case.status_changed.v1",
        # QA draws from resolved cases: this one is sampled exactly when the policy's seeded
        # draw says so.
        *(["casetrail.case.qa_sampled.v1"] if drawn_for_qa(case_id, view) else []),
        "casetrail.case.satisfaction_survey_requested.v1",
        "casetrail.case.status_changed.v1",
        "casetrail.case.satisfaction_recorded.v1",
    ]

    def lifecycle_in_audit() -> bool:
        types = audited_types(stack, case_id)
        return [kind for kind in types if not kind.startswith("casetrail.clock")] == expected

    wait_for(lifecycle_in_audit, timeout=30)

    # Closed stays closed: the customer's next words open a follow-up that points back.
    def follow_up() -> dict[str, Any] | None:
        answer = open_message(
            stack,
            f"{uuid.uuid4().hex[:8]}@example.com",
            "One more question",
            subject=f"About {opened['reference']}",
            provider_message_id=f"probe-{uuid.uuid4()}",
        )
        return answer if answer["rule_id"] == "OPEN-FOLLOW-UP" else None

    assert wait_for(follow_up, timeout=30)["case_id"] != case_id


def test_supervisors_reassign_and_escalate_with_a_reason(stack, wait_for):
    first, second = (f"agent-{uuid.uuid4().hex[:8]}" for _ in range(2))
    for agent_id in (first, second):
        assert put_agent(stack, agent_id).status_code == 200
    opened = open_message(stack, f"{uuid.uuid4().hex[:8]}@example.com", "Where is my refund?")
    case_id = opened["case_id"]
    wait_for(lambda: triage_view(stack, case_id), timeout=30)
    supervisor = stack.auth_headers("supervisor")
    agent = stack.auth_headers("agent")
    url = triage(stack, f"/v1/cases/{case_id}/assignment")
    body = {"agent_id": second, "partner_id": first, "assignment_kind": "Dual", "reason": "skills"}
    assert httpx.post(url, json=body, headers=agent).status_code == 403
    moved = httpx.post(url, json=body, headers=supervisor)
    assert moved.status_code == 200, moved.text
    assert (moved.json()["assignee"], moved.json()["partner"]) == (second, first)
    dual = httpx.get(
        triage(stack, "/v1/my/dual-cases"),
        params={"limit": 1000},
        headers={"Authorization": f"Bearer {stack.token('agent', subject=first)}"},
    ).json()
    assert case_id in [c["case_id"] for c in dual]
    escalation = triage(stack, f"/v1/cases/{case_id}/escalation")
    escalated = httpx.post(
        escalation, json={"to_tier": 2, "reason": "needs a specialist"}, headers=supervisor
    )
    assert escalated.json()["tier"] == 2
    assert escalated.json()["rules_fired"][-1] == "ESC-SUPERVISOR"
    unknown = httpx.post(url, json=body | {"agent_id": "nobody"}, headers=supervisor)
    assert unknown.status_code == 422


def test_the_case_list_is_rebuilt_from_events_alone(stack, wait_for):
    opened = open_message(stack, f"{uuid.uuid4().hex[:8]}@example.com", "Rebuild me")
    wait_for(lambda: triage_view(stack, opened["case_id"]), timeout=30)
    query = "SELECT * FROM triage_cases ORDER BY case_id"
    with psycopg.connect(stack.database_url("triage")) as conn:
        before = conn.execute(query).fetchall()
        conn.execute("DELETE FROM triage_cases")
        conn.commit()
        assert conn.execute(query).fetchall() == []
    rebuilt = subprocess.run(
        [sys.executable, "-m", "casetrail.triage.cli", "rebuild-case-list"],
        env={**os.environ, **stack.service_env("triage")},
        capture_output=True,
        text=True,
        check=True,
    )
    assert f"case list rebuilt from events: {len(before)} cases" in rebuilt.stdout
    with psycopg.connect(stack.database_url("triage")) as conn:
        assert conn.execute(query).fetchall() == before


def test_a_case_left_in_assigned_at_shift_end_is_reported_and_recorded(stack, wait_for):
    # A timezone where it is now about noon, so the shift below never straddles midnight.
    utc_now = datetime.now(UTC)
    offset = 12 - utc_now.hour
    zone = "Etc/GMT" + (f"{-offset:+d}" if offset else "")
    local_now = utc_now.astimezone(ZoneInfo(zone))
    ended = (local_now - timedelta(hours=1)).replace(second=0, microsecond=0)
    shift = {
        "timezone": zone,
        "intervals": [
            {"weekday": local_now.weekday(), "start": "00:00", "end": ended.strftime("%H:%M")}
        ],
    }
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    assert put_agent(stack, agent_id, shift=shift).status_code == 200
    opened = open_message(stack, f"{uuid.uuid4().hex[:8]}@example.com", "Nobody picked me up")
    case_id = opened["case_id"]
    wait_for(lambda: triage_view(stack, case_id), timeout=30)
    moved = httpx.post(
        triage(stack, f"/v1/cases/{case_id}/assignment"),
        json={"agent_id": agent_id, "reason": "owner of this account"},
        headers=stack.auth_headers("supervisor"),
    )
    assert moved.json()["status"] == "Assigned"

    since, until = utc_now - timedelta(hours=2), utc_now
    report = httpx.get(
        triage(stack, "/v1/reports/end-of-shift"),
        params={"since": since.isoformat(), "until": until.isoformat()},
        headers=stack.auth_headers("supervisor"),
    ).json()
    mine = [item for item in report if item["agent_id"] == agent_id]
    assert [item["case_id"] for item in mine] == [case_id]
    assert datetime.fromisoformat(mine[0]["shift_ended_at"]) == ended

    store = TriageApplication(stack.database_url("triage"), pool_size=1, create_tables=False)
    try:
        assert report_shift_ends(store, since, until) >= 1
        report_shift_ends(store, since, until)  # a second watcher: records nothing new
    finally:
        store.close()

    def recorded() -> list[str]:
        return [kind for kind in audited_types(stack, case_id) if "left_assigned" in kind]

    assert wait_for(recorded, timeout=30) == ["casetrail.case.left_assigned_at_shift_end.v1"]
