"""End-to-end: personal data is sealed per customer everywhere it is stored or sent, and
erasing the customer (destroying their key) leaves every case replayable, shown as
erased, with every hash, proof and signature verifying as before."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
import zipfile
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from aiokafka import AIOKafkaConsumer
from test_audit_evidence import (
    CASETRAIL,
    add_worklog,
    as_auditor,
    audit,
    has_types,
    public_key_file,
)

from casetrail.contracts import personal
from casetrail.contracts.topics import INTAKE_EVENTS

pytestmark = pytest.mark.e2e

OPENED = "casetrail.case.opened.v1"
WORKLOG = "casetrail.case.worklog_entry_added.v1"


def phone_call(stack: Any, phone: str, name: str, body: str) -> dict[str, Any]:
    """A call logged by the IVR adapter: the caller's number is also among its own facts."""
    response = httpx.post(
        f"{stack.service_url('intake')}/v1/channels/phone/messages",
        json={
            "customer": {"phone": phone, "name": name},
            "body": body,
            "source": {"callback_consent": True, "callback_number": phone},
        },
        headers=stack.auth_headers("channel"),
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()


def customer_of(stack: Any, case_id: str) -> str:
    response = httpx.get(
        f"{stack.service_url('intake')}/v1/cases/{case_id}", headers=stack.auth_headers("agent")
    )
    assert response.status_code == 200, response.text
    return response.json()["customer_id"]


def get(stack: Any, service: str, path: str, role: str = "auditor") -> Any:
    response = httpx.get(f"{stack.service_url(service)}{path}", headers=stack.auth_headers(role))
    assert response.status_code == 200, response.text
    return response.json()


def stored_states_containing(stack: Any, database: str, needle: str) -> int:
    """How many stored events in the service's own event store hold `needle` in the clear."""
    with psycopg.connect(stack.postgres.admin_url(database)) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.columns "
            "WHERE column_name = 'state' AND data_type = 'bytea' AND table_schema = 'public'"
        ).fetchall()
        assert tables, f"no event store found in {database}"
        return sum(
            conn.execute(
                f'SELECT count(*) FROM "{table}" WHERE position(%s::bytea in state) > 0',
                (needle.encode(),),
            ).fetchone()[0]
            for (table,) in tables
        )


async def published_values(stack: Any, case_id: str) -> list[bytes]:
    """Every record intake published for the case, read back from Kafka."""
    consumer = AIOKafkaConsumer(
        INTAKE_EVENTS,
        bootstrap_servers=stack.kafka.bootstrap(),
        auto_offset_reset="earliest",
        group_id=f"test-erasure-{uuid.uuid4()}",
    )
    await consumer.start()
    found: list[bytes] = []
    try:
        async with asyncio.timeout(60):
            while not found:
                for records in (await consumer.getmany(timeout_ms=1000)).values():
                    found += [r.value for r in records if case_id.encode() in r.value]
    finally:
        await consumer.stop()
    return found


def verify_offline(stack: Any, bundle: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CASETRAIL, "verify", str(bundle), "--key", str(public_key_file(stack))],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin"},
    )


def export(stack: Any, case_id: str, into: Path) -> str:
    response = httpx.get(audit(stack, f"/v1/cases/{case_id}/export"), headers=as_auditor(stack))
    assert response.status_code == 200, response.text
    into.write_bytes(response.content)
    verified = verify_offline(stack, into)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    with zipfile.ZipFile(into) as archive:
        return archive.read("timeline.html").decode()


def test_personal_data_is_sealed_and_erasure_keeps_every_proof(stack, wait_for, tmp_path):
    phone = f"+1415555{uuid.uuid4().int % 10_000:04d}"
    name = f"Ann Erasable {uuid.uuid4().hex[:6]}"
    words = f"My payment failed twice, call me back {uuid.uuid4().hex[:8]}"
    case_id = phone_call(stack, phone, name, words)["case_id"]
    customer_id = customer_of(stack, case_id)
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    notes = f"Promised a refund to {name}"
    add_worklog(stack, case_id, notes)
    found = wait_for(lambda: has_types(stack, case_id, WORKLOG), timeout=60)

    # Stored and sent sealed: intake's and triage's event stores, Kafka and audit's records.
    for secret in (phone, name, words):
        assert stored_states_containing(stack, "casetrail_intake", secret) == 0, secret
    assert stored_states_containing(stack, "casetrail_triage", notes) == 0
    published = asyncio.run(published_values(stack, case_id))
    assert published and not any(s.encode() in v for v in published for s in (phone, name, words))
    recorded = {r["type"]: r for r in found["records"]}
    opening = recorded[OPENED]
    assert all(personal.is_sealed(opening["event"]["data"][f]) for f in ("description", "subject"))
    assert personal.is_sealed(opening["event"]["data"]["source"]["callback_number"])
    assert opening["event"]["data"]["source"]["callback_consent"] is True  # facts stay readable
    assert personal.is_sealed(recorded[WORKLOG]["event"]["data"]["outcome"])
    # ... and opened for whoever may read them: triage classified the words it could read.
    assert opening["data"]["description"] == words
    assert opening["data"]["source"]["callback_number"] == phone
    assert recorded[WORKLOG]["data"]["outcome"] == notes
    assert get(stack, "triage", f"/v1/cases/{case_id}/triage", "agent")["severity"] == "S1"
    profile = get(stack, "intake", f"/v1/customers/{customer_id}", "agent")
    assert profile["name"] == name and {"kind": "phone", "value": phone} in profile["contacts"]
    before = get(stack, "audit", f"/v1/cases/{case_id}/state")
    assert before["state"]["subject"] == words[:120]
    assert before["state"]["worklog"][0]["outcome"] == notes
    timeline_before = export(stack, case_id, tmp_path / "before.zip")
    assert words in timeline_before

    # Only a manager-level role may erase; an agent is told who may.
    erasure = f"{stack.service_url('intake')}/v1/customers/{customer_id}/erasure"
    refused = httpx.post(
        erasure, json={"reason": "GDPR art. 17"}, headers=stack.auth_headers("agent")
    )
    assert refused.status_code == 403, refused.text
    erased = httpx.post(
        erasure, json={"reason": "GDPR art. 17 request"}, headers=stack.auth_headers("supervisor")
    )
    assert erased.status_code == 200, erased.text
    assert erased.json()["erased_at"] and erased.json()["contacts"] == []
    assert erased.json()["name"] is None
    again = httpx.post(erasure, json={"reason": "again"}, headers=stack.auth_headers("supervisor"))
    assert again.json()["erased_at"] == erased.json()["erased_at"]

    # History still replays, personal fields shown as erased, the records untouched.
    after = get(stack, "audit", f"/v1/cases/{case_id}/history?limit=1000")
    opening_after = next(r for r in after["records"] if r["type"] == OPENED)
    assert opening_after["event"] == opening["event"]
    assert opening_after["hash"] == opening["hash"]
    assert opening_after["data"]["description"] == personal.ERASED
    assert opening_after["data"]["subject"] == personal.ERASED
    assert opening_after["data"]["source"]["callback_number"] == personal.ERASED
    worklog_after = next(r for r in after["records"] if r["type"] == WORKLOG)
    assert worklog_after["data"]["outcome"] == personal.ERASED
    state_now = get(stack, "audit", f"/v1/cases/{case_id}/state?as_of={before['as_of']}")
    assert state_now["state"]["subject"] == personal.ERASED
    assert state_now["state"]["worklog"][0]["outcome"] == personal.ERASED
    assert state_now["state_hash"] == before["state_hash"]
    assert state_now["state"]["status"] == before["state"]["status"]

    # Every hash, proof and signature still verifies, online and offline.
    assert get(stack, "audit", f"/v1/cases/{case_id}/verify")["valid"] is True
    assert get(stack, "audit", "/v1/log/verify")["valid"] is True
    timeline_after = export(stack, case_id, tmp_path / "after.zip")
    assert personal.ERASED in timeline_after
    assert not any(secret in timeline_after for secret in (phone, name, words, notes))
    old, new = (zipfile.ZipFile(tmp_path / name) for name in ("before.zip", "after.zip"))
    with old, new:
        assert old.read("events.jsonl") == new.read("events.jsonl")

    # The erased customer is forgotten: the same phone later is a new customer.
    returning = phone_call(stack, phone, "Ann", "Hello again")
    assert returning["case_id"] != case_id and returning["status"] == "opened"
    assert customer_of(stack, returning["case_id"]) != customer_id
    wait_for(lambda: has_types(stack, returning["case_id"], OPENED), timeout=60)
    newer = get(stack, "audit", f"/v1/cases/{returning['case_id']}/history")
    assert newer["records"][0]["data"]["description"] == "Hello again"
