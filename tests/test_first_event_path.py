"""End-to-end: one case through intake, triage, sla-timer, refunds and audit, for real."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.e2e

EXPECTED_AFTER_OPENING = [
    "casetrail.case.opened.v1",
    "casetrail.case.triaged.v1",
    "casetrail.case.assigned.v1",
]


def a_case(**overrides: Any) -> dict[str, Any]:
    body = {
        "channel": "email",
        "customer_ref": f"acct-{uuid.uuid4().hex[:8]}",
        "subject": "Payment failed twice",
        "description": "My card payment failed and I was still charged.",
        "transaction_id": "tx-481516",
        "transaction_time": "2026-11-20T09:30:00Z",
        "attachments": [
            {
                "filename": "receipt.pdf",
                "media_type": "application/pdf",
                "size_bytes": 48213,
                "sha256": "a" * 64,
            }
        ],
    }
    body.update(overrides)
    return body


def history(stack: Any, case_id: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
        params={"limit": 1000},
        headers=stack.auth_headers("auditor"),
    )
    if response.status_code == 404:
        return []
    response.raise_for_status()
    return response.json()["records"]


def verify(stack: Any, case_id: str) -> dict[str, Any]:
    url = f"{stack.service_url('audit')}/v1/cases/{case_id}/verify"
    return httpx.get(url, headers=stack.auth_headers("auditor")).json()


def types_of(records: list[dict[str, Any]]) -> list[str]:
    return [r["type"] for r in records]


def case_types(records: list[dict[str, Any]]) -> list[str]:
    """The case's own events, without the SLA clocks that run alongside."""
    return [kind for kind in types_of(records) if not kind.startswith("casetrail.clock")]


def open_case(stack: Any, body: dict[str, Any], key: str | None = None) -> httpx.Response:
    headers = stack.auth_headers("channel") | ({"Idempotency-Key": key} if key else {})
    return httpx.post(f"{stack.service_url('intake')}/v1/cases", json=body, headers=headers)


def assert_causal_order(records: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for record in records:
        cause = record["causationid"]
        assert cause is None or cause in seen, f"{record['type']} recorded before its cause"
        seen.add(record["event_id"])


def test_a_case_travels_through_all_five_services(stack, wait_for):
    response = open_case(stack, a_case())
    assert response.status_code == 202, response.text
    case_id = response.json()["case_id"]

    # A failed payment is S1: its own response, remediation and resolution clocks run.
    s1_rules = {"FR-SEV-S1", "RP-SEV-S1", "RES-SEV-S1"}
    shown = wait_for(
        lambda: (
            (c := clocks(stack, case_id)) and s1_rules <= {x["rule_id"] for x in c["clocks"]} and c
        )
    )
    assert all(c["state"] in {"running", "withdrawn"} for c in shown["clocks"])
    records = wait_for(lambda: every_clock_recorded(stack, case_id))
    assert sorted(case_types(records)) == sorted(EXPECTED_AFTER_OPENING)
    assert types_of(records)[0] == "casetrail.case.opened.v1"
    triaged = next(r for r in records if r["type"] == "casetrail.case.triaged.v1")
    assert triaged["event"]["data"]["severity"] == "S1"
    assert "SEV-PAYMENT-FAILURE" in triaged["event"]["data"]["rules_fired"]

    refund_url = f"{stack.service_url('refunds')}/v1/cases/{case_id}/refunds"
    refund = {
        "amount": {"amount_minor": 25_000, "currency": "USD"},
        "reason": "not_satisfied",
        "usage": {"logged_in": True, "reports_pulled": False, "build_it_used": False},
        "charged_at": "2026-11-20T09:30:00Z",
    }
    agent = stack.auth_headers("agent")
    decided = wait_for(
        lambda: (r := httpx.post(refund_url, json=refund, headers=agent)).status_code == 202 and r
    )
    assert decided.json()["status"] == "awaiting_approval"
    assert decided.json()["awaiting"] == ["supervisor"]

    refund_types = [
        "casetrail.refund.requested.v1",
        "casetrail.refund.downgrade_triggered.v1",
        "casetrail.refund.decided.v2",
        "casetrail.refund.approval_required.v1",
    ]
    records = wait_for(
        lambda: (r := history(stack, case_id)) and set(refund_types) <= set(types_of(r)) and r
    )
    assert [t for t in types_of(records) if t.startswith("casetrail.refund")] == refund_types
    assert_causal_order(records)
    assert [r["seq"] for r in records] == list(range(1, len(records) + 1))

    verdict = verify(stack, case_id)
    assert verdict["valid"] is True and verdict["first_bad_record"] is None
    assert verdict["records"] >= len(records)


def every_clock_recorded(stack: Any, case_id: str) -> list[dict[str, Any]] | None:
    """The case's history once audit holds a start for every clock the SLA timer shows."""
    records = history(stack, case_id)
    started = {
        r["event"]["data"]["rule_id"] for r in records if r["type"] == "casetrail.clock.started.v1"
    }
    shown = clocks(stack, case_id)
    return records if shown and started == {c["rule_id"] for c in shown["clocks"]} else None


def clocks(stack: Any, case_id: str) -> dict[str, Any] | None:
    response = httpx.get(
        f"{stack.service_url('sla_timer')}/v1/cases/{case_id}/clocks",
        headers=stack.auth_headers("agent"),
    )
    return response.json() if response.status_code == 200 else None


def test_the_same_idempotency_key_opens_one_case(stack, wait_for):
    key = f"key-{uuid.uuid4()}"
    body = a_case(subject="Where is my refund?")
    first, second = open_case(stack, body, key), open_case(stack, body, key)
    assert first.status_code == second.status_code == 202
    assert first.json()["case_id"] == second.json()["case_id"]

    conflicting = open_case(stack, a_case(subject="Something else"), key)
    assert conflicting.status_code == 409
    assert conflicting.json()["error"] == "idempotency_key_reused"

    case_id = first.json()["case_id"]
    records = wait_for(lambda: (r := history(stack, case_id)) and len(r) >= 4 and r)
    assert types_of(records).count("casetrail.case.opened.v1") == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in a_case().items() if k != "subject"}, ["body", "subject"]),
        (a_case(channel="carrier-pigeon"), ["body", "channel"]),
        (a_case(customer_ref=42), ["body", "customer_ref"]),
        (a_case(transaction_time="yesterday"), ["body", "transaction_time"]),
        (a_case(transaction_time="2026-11-20T09:30:00"), ["body", "transaction_time"]),
    ],
)
def test_bad_input_is_refused_field_by_field_and_records_nothing(stack, body, field):
    def stored_events() -> int:
        with psycopg.connect(stack.database_url("intake")) as conn:
            return conn.execute("SELECT count(*) FROM intake_events").fetchone()[0]

    before = stored_events()
    response = open_case(stack, body)
    assert response.status_code == 422
    problem = response.json()
    assert problem["error"] == "validation_failed"
    assert field in [d["loc"] for d in problem["detail"]]
    assert stored_events() == before


def test_a_consumer_killed_before_committing_its_offset_duplicates_nothing(stack, wait_for):
    stack.stop_service("triage")
    stack.start_service("triage", extra_env={"TRIAGE_FAILPOINT_KILL_AFTER_HANDLING": "true"})
    case_id = open_case(stack, a_case(subject="Statement question")).json()["case_id"]

    wait_for(lambda: not stack.service_running("triage"), timeout=60)
    stack.stop_service("triage")  # collects the killed process
    stack.start_service("triage")

    wait_for(lambda: len(case_types(history(stack, case_id))) >= 3)
    records = wait_for(
        lambda: len(case_types(r := history(stack, case_id))) == len(EXPECTED_AFTER_OPENING) and r,
        timeout=10,
    )
    assert sorted(case_types(records)) == sorted(EXPECTED_AFTER_OPENING)
    assert len({r["event_id"] for r in records}) == len(records)


TAMPER_WITH_SEVERITY = """
    UPDATE audit_records
    SET envelope = replace(envelope, '"severity":"S2"', '"severity":"S4"')
    WHERE case_id = %s AND event_type = 'casetrail.case.triaged.v1'
    RETURNING case_seq
"""


UNDO_TAMPERING = """
    UPDATE audit_records
    SET envelope = replace(envelope, '"severity":"S4"', '"severity":"S2"')
    WHERE case_id = %s AND event_type = 'casetrail.case.triaged.v1'
"""


def test_a_record_changed_in_postgresql_is_named_by_verify(stack, wait_for):
    body = a_case(subject="Account locked out", description="I am locked out of my account.")
    case_id = open_case(stack, body).json()["case_id"]
    wait_for(lambda: len(history(stack, case_id)) >= 4)
    audit_db = stack.database_url("audit")

    with psycopg.connect(audit_db) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute("UPDATE audit_records SET envelope = envelope WHERE case_id = %s", (case_id,))
    with (
        psycopg.connect(stack.postgres.owner_url("audit")) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("DELETE FROM audit_records WHERE case_id = %s", (case_id,))

    # Someone with superuser rights goes around the guard and edits the second record.
    admin = stack.postgres.admin_url(dbname="casetrail_audit")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        try:
            changed = conn.execute(TAMPER_WITH_SEVERITY, (case_id,)).fetchall()
        finally:
            conn.execute("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only")

    assert len(changed) == 1
    [(tampered_seq,)] = changed

    verdict = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/verify",
        headers=stack.auth_headers("auditor"),
    ).json()
    # Put the record back, so the shared stack's log verifies again for the tests after.
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute("ALTER TABLE audit_records DISABLE TRIGGER audit_records_append_only")
        try:
            conn.execute(UNDO_TAMPERING, (case_id,))
        finally:
            conn.execute("ALTER TABLE audit_records ENABLE TRIGGER audit_records_append_only")
    assert verdict["valid"] is False
    assert verdict["first_bad_record"]["seq"] == tampered_seq
    assert verdict["first_bad_record"]["reason"] == "hash does not match the stored event"
    restored = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/verify",
        headers=stack.auth_headers("auditor"),
    ).json()
    assert restored["valid"] is True


def test_intake_killed_right_after_accepting_still_delivers_the_case_once(stack, wait_for):
    bodies = [a_case(subject=f"Statement question {n}") for n in range(5)]
    accepted = [open_case(stack, body).json()["case_id"] for body in bodies]
    stack.kill_service("intake")  # the outbox may not have published all of them yet
    stack.start_service("intake")

    for case_id in accepted:
        records = wait_for(
            lambda case_id=case_id: (r := history(stack, case_id)) and len(r) >= 4 and r
        )
        assert types_of(records).count("casetrail.case.opened.v1") == 1
    readable = httpx.get(
        f"{stack.service_url('intake')}/v1/cases/{accepted[0]}", headers=stack.auth_headers("agent")
    )
    assert readable.status_code == 200 and readable.json()["subject"] == "Statement question 0"


def test_a_body_over_the_size_limit_is_refused_with_413_and_records_nothing(stack):
    huge = a_case(description="x" * 40_000_000)  # intake takes up to 32 MiB: e-mail, batches
    response = open_case(stack, huge)
    assert response.status_code == 413
    assert response.json()["error"] == "payload_too_large"


def test_unknown_routes_and_methods_answer_in_json(stack):
    intake = stack.service_url("intake")
    missing = httpx.get(f"{intake}/v1/nothing-here", headers=stack.auth_headers("agent"))
    assert missing.status_code == 404 and missing.json()["error"] == "http_404"
    wrong = httpx.delete(f"{intake}/v1/cases", headers=stack.auth_headers("channel"))
    assert wrong.status_code == 405 and wrong.json()["error"] == "http_405"
