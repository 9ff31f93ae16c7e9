"""When Kafka or PostgreSQL is down, intake refuses clearly and records nothing; when it
returns, everything resumes by itself."""

from __future__ import annotations

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "triage", "sla_timer", "refunds", "audit")
CASE = {"channel": "web", "customer_ref": "acct-f", "subject": "Fees", "description": "Why?"}


def ready(stack, service: str) -> bool:
    try:
        return httpx.get(f"{stack.service_url(service)}/readyz", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def open_case(stack) -> httpx.Response:
    return httpx.post(
        f"{stack.service_url('intake')}/v1/cases",
        json=CASE,
        headers=stack.auth_headers("channel"),
        timeout=30,
    )


# A case is through the whole pipeline once audit holds its opening, triage, assignment
# and its first SLA clock.
THROUGH_THE_PIPELINE = {
    "casetrail.case.opened.v1",
    "casetrail.case.triaged.v1",
    "casetrail.case.assigned.v1",
    "casetrail.clock.started.v1",
}


def recorded_types(stack, case_id: str) -> set[str]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
        headers=stack.auth_headers("auditor"),
    )
    return {r["type"] for r in response.json()["records"]} if response.status_code == 200 else set()


@pytest.mark.parametrize("dependency", ["kafka", "postgres"])
def test_intake_refuses_while_a_dependency_is_down_and_resumes_after(stack, wait_for, dependency):
    infrastructure = getattr(stack, dependency)
    with psycopg.connect(stack.database_url("intake")) as conn:
        before = conn.execute("SELECT count(*) FROM intake_events").fetchone()[0]
    infrastructure.stop()
    try:
        wait_for(lambda: not ready(stack, "intake"), timeout=30)
        refused = open_case(stack)
        assert refused.status_code == 503
        assert refused.headers["Retry-After"]
        assert refused.json()["error"] in {"not_ready", "dependency_unavailable"}
    finally:
        infrastructure.start()
    for service in SERVICES:
        wait_for(lambda service=service: ready(stack, service), timeout=120)
    with psycopg.connect(stack.database_url("intake")) as conn:
        assert conn.execute("SELECT count(*) FROM intake_events").fetchone()[0] == before

    accepted = wait_for(lambda: (r := open_case(stack)).status_code == 202 and r, timeout=60)
    case_id = accepted.json()["case_id"]
    wait_for(lambda: THROUGH_THE_PIPELINE <= recorded_types(stack, case_id), timeout=120)
