"""SLA clocks through the real stack: a timer service killed while timers fall due fires
each of them once after its restart, late; the dashboard and contact attempts."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import pytest
from sla_policies import short_clocks

pytestmark = pytest.mark.e2e


def open_case(stack: Any, channel: str = "web", **extra: Any) -> str:
    body = {
        "channel": channel,
        "customer_ref": f"acct-{uuid.uuid4().hex[:8]}",
        "subject": "Statement is wrong",
        "description": "The balance on my statement does not match my payments.",
        **extra,
    }
    response = httpx.post(
        f"{stack.service_url('intake')}/v1/cases", json=body, headers=stack.auth_headers("channel")
    )
    assert response.status_code == 202, response.text
    return response.json()["case_id"]


def clocks(stack: Any, case_id: str) -> dict[str, Any] | None:
    response = httpx.get(
        f"{stack.service_url('sla_timer')}/v1/cases/{case_id}/clocks",
        headers=stack.auth_headers("agent"),
    )
    return response.json() if response.status_code == 200 else None


def history(stack: Any, case_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
        params={"limit": 1000},
        headers=stack.auth_headers("auditor"),
    )
    return response.json()["records"] if response.status_code == 200 else []


def test_timers_due_while_the_timer_service_is_dead_fire_once_late_after_restart(
    stack, wait_for, tmp_path
):
    policy = short_clocks(tmp_path, warning_fractions=(0.5,), late_after_seconds=5)
    short = {"SLA_TIMER_POLICY_FILE": str(policy)}
    stack.stop_service("sla_timer")
    stack.start_service("sla_timer", short | {"SLA_TIMER_SCHEDULER_POLL_SECONDS": "0.5"})
    try:
        cases = [open_case(stack) for _ in range(5)]
        for case_id in cases:
            wait_for(lambda case_id=case_id: (c := clocks(stack, case_id)) and c["clocks"])
        stack.kill_service("sla_timer")
        opened_last = datetime.now(UTC)
        time.sleep(70)  # every one-minute clock, its warning and its breach, fall due
        stack.start_service("sla_timer", short | {"SLA_TIMER_SCHEDULER_POLL_SECONDS": "0.5"})
        for case_id in cases:
            wait_for(
                lambda case_id=case_id: all(
                    c["state"] == "breached" for c in clocks(stack, case_id)["clocks"]
                ),
                timeout=120,
            )
        for case_id in cases:
            records = wait_for(
                lambda case_id=case_id: (
                    (r := history(stack, case_id))
                    and Counter(x["type"] for x in r)["casetrail.case.escalated.v1"] == 1
                    and r
                ),
                timeout=120,
            )
            kinds = Counter(r["type"] for r in records)
            assert kinds["casetrail.clock.started.v1"] == 2
            assert kinds["casetrail.clock.warning.v1"] == 2
            assert kinds["casetrail.clock.breached.v1"] == 2
            assert kinds["casetrail.case.escalation_requested.v1"] == 1
            breaches = [r for r in records if r["type"] == "casetrail.clock.breached.v1"]
            assert all(b["event"]["data"]["late"] for b in breaches)
            assert all(
                datetime.fromisoformat(b["event"]["data"]["breached_at"]) > opened_last
                for b in breaches
            )
        with psycopg.connect(stack.database_url("sla_timer")) as conn:
            fired = conn.execute(
                "SELECT count(*), count(DISTINCT timer_id) FROM sla_clock_timers"
                " WHERE case_id = ANY(%s) AND fired_at IS NOT NULL",
                ([uuid.UUID(c) for c in cases],),
            ).fetchone()
        assert fired == (5 * 4, 5 * 4)  # two clocks a case, one warning and one breach each

        today = datetime.now(UTC).date().isoformat()
        board = httpx.get(
            f"{stack.service_url('sla_timer')}/v1/sla/dashboard",
            params={"day": today},
            headers=stack.auth_headers("supervisor"),
        ).json()
        web = next(row for row in board["by"]["channel"] if row["group"] == "web")
        assert web["breached"] >= 10 and web["attainment"] is not None
    finally:
        stack.stop_service("sla_timer")
        stack.start_service("sla_timer")


def test_a_case_shows_its_headline_deadline_and_records_contact_attempts(stack, wait_for):
    case_id = open_case(stack, channel="email")
    shown = wait_for(lambda: (c := clocks(stack, case_id)) and len(c["clocks"]) >= 3 and c)
    running = [c["deadline"] for c in shown["clocks"] if c["state"] == "running"]
    assert shown["headline_deadline"] == min(running)
    assert {"first_response", "resolution"} <= {c["clock"] for c in shown["clocks"]}

    url = f"{stack.service_url('sla_timer')}/v1/cases/{case_id}/contact-attempts"
    agent = stack.auth_headers("agent")
    first = httpx.post(url, json={"channels": ["email"], "reached": False}, headers=agent)
    assert first.status_code == 201, first.text
    assert first.json()["contact_attempts"] == 1
    same_day = httpx.post(url, json={"channels": ["email"], "reached": False}, headers=agent)
    assert same_day.status_code == 409
    assert same_day.json()["error"] == "contact_attempt_refused"
    dashboard = httpx.get(
        f"{stack.service_url('sla_timer')}/v1/sla/dashboard",
        params={"since": "2026-11-30", "until": "2026-11-01"},
        headers=stack.auth_headers("supervisor"),
    )
    assert dashboard.status_code == 422


def test_a_new_severity_recomputes_the_clocks(stack, wait_for):
    case_id = open_case(stack, channel="email")
    wait_for(
        lambda: (
            (c := clocks(stack, case_id))
            and any(x["rule_id"].startswith("FR-SEV-") for x in c["clocks"])
        )
    )
    changed = httpx.put(
        f"{stack.service_url('triage')}/v1/cases/{case_id}/classification",
        json={"severity": "S1", "reason": "payments are failing for this customer"},
        headers=stack.auth_headers("supervisor"),
    )
    assert changed.status_code == 200, changed.text
    shown = wait_for(
        lambda: (
            (c := clocks(stack, case_id))
            and any(x["rule_id"] == "FR-SEV-S1" for x in c["clocks"])
            and c
        )
    )
    states = {c["rule_id"]: c["state"] for c in shown["clocks"]}
    assert states["FR-SEV-S1"] == "running"
    assert [state for rule, state in states.items() if rule.startswith("FR-SEV-S")].count(
        "withdrawn"
    ) == 1
