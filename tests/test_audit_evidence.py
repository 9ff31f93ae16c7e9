"""End-to-end: audit proves a case's history, shows it at any instant, and exports an
evidence bundle that verifies offline with nothing but the bundle and a public key."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from casetrail.contracts.envelope import Envelope
from casetrail.evidence import merkle
from casetrail.evidence.tree_head import TreeHead, load_public_key, verify_tree_head

pytestmark = pytest.mark.e2e

CASETRAIL = str(Path(sys.executable).with_name("casetrail"))


def audit(stack: Any, path: str) -> str:
    return f"{stack.service_url('audit')}{path}"


def as_auditor(stack: Any) -> dict[str, str]:
    return stack.auth_headers("auditor")


def open_case(stack: Any, subject: str) -> str:
    response = httpx.post(
        f"{stack.service_url('intake')}/v1/cases",
        json={
            "channel": "email",
            "customer_ref": f"acct-{uuid.uuid4().hex[:8]}",
            "subject": subject,
            "description": "I was charged a fee I never agreed to.",
        },
        headers=stack.auth_headers("channel"),
    )
    assert response.status_code in (200, 201, 202), response.text
    return response.json()["case_id"]


def history(stack: Any, case_id: str, **params: Any) -> dict[str, Any]:
    response = httpx.get(
        audit(stack, f"/v1/cases/{case_id}/history"),
        params={"limit": 1000, **params},
        headers=as_auditor(stack),
    )
    return response.json() if response.status_code == 200 else {"records": []}


def has_types(stack: Any, case_id: str, *types: str) -> dict[str, Any] | None:
    found = history(stack, case_id)
    recorded = {r["type"] for r in found["records"]}
    return found if all(t in recorded for t in types) else None


def publish_tree_head(stack: Any) -> TreeHead:
    response = httpx.post(audit(stack, "/v1/log/tree-heads"), headers=as_auditor(stack))
    assert response.status_code == 200, response.text
    return TreeHead.from_json_dict(response.json())


def public_key_file(stack: Any) -> Path:
    """The key handed to auditors out of band: the dev stack keeps it beside its data."""
    return stack.root / "audit-public-key.pem"


def add_worklog(stack: Any, case_id: str, outcome: str) -> None:
    response = httpx.post(
        f"{stack.service_url('triage')}/v1/cases/{case_id}/worklog",
        json={"issue_type": "Billing", "action": "Called the customer", "outcome": outcome},
        headers=stack.auth_headers("supervisor"),
    )
    assert response.status_code == 201, response.text


def test_history_carries_proofs_that_lead_to_a_signed_root(stack, wait_for):
    case_id = open_case(stack, "Unexpected fee")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    head = publish_tree_head(stack)
    key = load_public_key(public_key_file(stack).read_bytes())
    verify_tree_head(head, key)
    served_key = httpx.get(audit(stack, "/v1/log/public-key"), headers=as_auditor(stack))
    assert served_key.content == public_key_file(stack).read_bytes()

    page = history(stack, case_id, tree_size=head.tree_size)
    assert page["tree_head"]["root_hash"] == head.root_hash.hex()
    # Events recorded after the head (the case's clocks go on) wait for the next one.
    covered = [r for r in page["records"] if r["leaf_index"] < head.tree_size]
    assert all(r["inclusion_proof"] is None for r in page["records"] if r not in covered)
    assert {"casetrail.case.opened.v1", "casetrail.case.assigned.v1"} <= {
        r["type"] for r in covered
    }
    for record in covered:
        canonical = Envelope.model_validate(record["event"]).to_bytes()
        assert bytes.fromhex(record["leaf_hash"]) == merkle.leaf_hash(canonical)
        merkle.verify_inclusion(
            record["leaf_index"],
            head.tree_size,
            merkle.leaf_hash(canonical),
            [bytes.fromhex(node) for node in record["inclusion_proof"]],
            head.root_hash,
        )

    add_worklog(stack, case_id, "Fee explained")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.worklog_entry_added.v1"))
    later = publish_tree_head(stack)
    assert later.tree_size > head.tree_size
    consistency = httpx.get(
        audit(stack, "/v1/log/consistency"),
        params={"first": head.tree_size, "second": later.tree_size},
        headers=as_auditor(stack),
    )
    assert consistency.status_code == 200, consistency.text
    merkle.verify_consistency(
        head.tree_size,
        later.tree_size,
        head.root_hash,
        later.root_hash,
        [bytes.fromhex(node) for node in consistency.json()["proof"]],
    )
    unsigned = httpx.get(
        audit(stack, "/v1/log/consistency"),
        params={"first": head.tree_size, "second": later.tree_size + 10_000},
        headers=as_auditor(stack),
    )
    assert unsigned.status_code == 404
    assert unsigned.json()["error"] == "no_such_tree_head"


def test_the_case_as_it_stood_and_what_changed_since(stack, wait_for):
    case_id = open_case(stack, "Fee on my statement")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    time.sleep(0.01)
    before_worklog = datetime.now(UTC)
    add_worklog(stack, case_id, "Refund promised")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.worklog_entry_added.v1"))

    def state(**params: Any) -> dict[str, Any]:
        response = httpx.get(
            audit(stack, f"/v1/cases/{case_id}/state"), params=params, headers=as_auditor(stack)
        )
        assert response.status_code == 200, response.text
        return response.json()

    then = state(as_of=before_worklog.isoformat())
    now = state()
    assert then["state"]["worklog"] == []
    assert [w["outcome"] for w in now["state"]["worklog"]] == ["Refund promised"]
    assert now["events_folded"] > then["events_folded"]
    # Deterministic replay: the same events fold to the same bytes, every time.
    assert state(as_of=before_worklog.isoformat())["state_hash"] == then["state_hash"]
    assert then["state_hash"] != now["state_hash"]

    diff = httpx.get(
        audit(stack, f"/v1/cases/{case_id}/diff"),
        params={"from": before_worklog.isoformat(), "to": datetime.now(UTC).isoformat()},
        headers=as_auditor(stack),
    ).json()
    assert diff["from_state_hash"] == then["state_hash"]
    assert "worklog" in {change["path"] for change in diff["changes"]}
    assert "casetrail.case.worklog_entry_added.v1" in {e["type"] for e in diff["events"]}

    naive = httpx.get(
        audit(stack, f"/v1/cases/{case_id}/state"),
        params={"as_of": "2026-11-23T10:00:00"},
        headers=as_auditor(stack),
    )
    assert naive.status_code == 422
    backwards = httpx.get(
        audit(stack, f"/v1/cases/{case_id}/diff"),
        params={"from": datetime.now(UTC).isoformat(), "to": before_worklog.isoformat()},
        headers=as_auditor(stack),
    )
    assert backwards.status_code == 422 and backwards.json()["error"] == "invalid_period"


def test_an_exported_bundle_verifies_offline_and_a_changed_byte_is_named(stack, wait_for, tmp_path):
    case_id = open_case(stack, "Fee <script>alert(1)</script>")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    response = httpx.get(audit(stack, f"/v1/cases/{case_id}/export"), headers=as_auditor(stack))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(response.content)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        timeline = archive.read("timeline.html").decode()
    assert names >= {"events.jsonl", "proofs.json", "tree_head.json", "manifest.json"}
    assert "<script>alert" not in timeline and "&lt;script&gt;" in timeline

    # Offline: no stack settings in the environment, only the bundle and the key.
    offline_env = {"PATH": "/usr/bin:/bin"}
    verified = subprocess.run(
        [CASETRAIL, "verify", str(bundle), "--key", str(public_key_file(stack))],
        capture_output=True,
        text=True,
        env=offline_env,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.strip().endswith("VERIFIED")

    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(bundle) as source, zipfile.ZipFile(tampered, "w") as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "events.jsonl":
                content = content.replace(b'"channel":"email"', b'"channel":"phone"', 1)
            target.writestr(name, content)
    refused = subprocess.run(
        [CASETRAIL, "verify", str(tampered), "--key", str(public_key_file(stack))],
        capture_output=True,
        text=True,
        env=offline_env,
    )
    assert refused.returncode == 1
    assert "FAIL  files: missing, unlisted or altered: events.jsonl" in refused.stdout


def test_a_leaf_changed_behind_audits_back_is_named_by_verify(stack, wait_for):
    case_id = open_case(stack, "Card fee")
    found = wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    second = found["records"][1]
    with (
        psycopg.connect(stack.postgres.owner_url("audit")) as conn,
        pytest.raises(psycopg.errors.RaiseException, match="append-only"),
    ):
        conn.execute("UPDATE audit_log_leaves SET leaf_hash = leaf_hash")
    before = httpx.get(audit(stack, "/v1/log/verify"), headers=as_auditor(stack)).json()
    assert before["valid"] is True, before  # tests that tamper put things back
    admin = stack.postgres.admin_url(dbname="casetrail_audit")
    with psycopg.connect(admin, autocommit=True) as conn:
        forge_leaf(conn, second["event_id"], "sha256('forged')")
        try:
            verdict = httpx.get(
                audit(stack, f"/v1/cases/{case_id}/verify"), headers=as_auditor(stack)
            ).json()
            whole_log = httpx.get(audit(stack, "/v1/log/verify"), headers=as_auditor(stack))
        finally:
            forge_leaf(conn, second["event_id"], "decode(%s, 'hex')", second["leaf_hash"])
    assert verdict["valid"] is False
    assert verdict["first_bad_record"] == {
        "seq": 2,
        "event_id": second["event_id"],
        "reason": "its leaf in the global log hashes other bytes",
    }
    assert whole_log.json()["valid"] is False
    assert whole_log.json()["first_bad"] == {
        "leaf_index": second["leaf_index"],
        "event_id": second["event_id"],
        "tree_size": None,
        "reason": "its record hashes to another leaf",
    }
    # Put back as it was, the whole log and every signed head check out again.
    restored = httpx.get(audit(stack, "/v1/log/verify"), headers=as_auditor(stack)).json()
    assert restored["valid"] is True, restored
    assert restored["leaves"] > second["leaf_index"]


def forge_leaf(conn: psycopg.Connection, event_id: str, value_sql: str, *args: Any) -> None:
    """Someone with superuser rights goes around the append-only guard."""
    conn.execute("ALTER TABLE audit_log_leaves DISABLE TRIGGER audit_log_leaves_append_only")
    try:
        conn.execute(
            f"UPDATE audit_log_leaves SET leaf_hash = {value_sql} WHERE event_id = %s",
            (*args, event_id),
        )
    finally:
        conn.execute("ALTER TABLE audit_log_leaves ENABLE TRIGGER audit_log_leaves_append_only")


def test_an_escalated_case_is_sampled_for_qa_scored_and_audited(stack, wait_for):
    case_id = open_case(stack, "Fee charged again")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    triage_url = stack.service_url("triage")
    escalated = httpx.post(
        f"{triage_url}/v1/cases/{case_id}/escalation",
        json={"to_tier": 3, "reason": "customer threatens to go to the regulator"},
        headers=stack.auth_headers("supervisor"),
    )
    assert escalated.status_code == 200, escalated.text

    queue = httpx.get(
        f"{triage_url}/v1/qa/queue", params={"limit": 1000}, headers=as_auditor(stack)
    ).json()
    [waiting] = [item for item in queue if item["case_id"] == case_id]
    assert waiting["qa_reason"] == "escalation"

    scored = httpx.post(
        f"{triage_url}/v1/cases/{case_id}/qa-scorecard",
        json={"accuracy": 4, "policy_compliance": 5, "tone": 4, "closure_quality": 3},
        headers=stack.auth_headers("supervisor"),
    )
    assert scored.status_code == 201, scored.text
    queue = httpx.get(
        f"{triage_url}/v1/qa/queue", params={"limit": 1000}, headers=as_auditor(stack)
    ).json()
    assert case_id not in {item["case_id"] for item in queue}

    wait_for(lambda: has_types(stack, case_id, "casetrail.case.qa_scored.v1"))
    state = httpx.get(audit(stack, f"/v1/cases/{case_id}/state"), headers=as_auditor(stack)).json()[
        "state"
    ]
    assert state["qa_sampled"] == "escalation"
    assert [card["policy_compliance"] for card in state["qa_scorecards"]] == [5]
    assert "QA-ESCALATION" in state["rules_fired"]


def test_the_audit_store_is_rebuilt_from_kafka_from_the_first_offset(stack, wait_for):
    from casetrail.audit.domain import StoredRecord, verify_chain

    case_ids = [open_case(stack, f"Rebuild {n}") for n in range(3)]
    for case_id in case_ids:
        wait_for(lambda c=case_id: has_types(stack, c, "casetrail.case.assigned.v1"), timeout=60)
    live = {case_id: history(stack, case_id)["records"] for case_id in case_ids}

    fresh = f"audit_rebuild_{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        **stack.service_env("audit"),
        "AUDIT_DATABASE_URL": stack.postgres.ensure_service_database(fresh),
        "AUDIT_SCHEMA_DATABASE_URL": stack.postgres.owner_url(fresh),
        "AUDIT_CONSUMER_GROUP": fresh,
    }
    rebuilt = subprocess.run(
        [sys.executable, "-m", "casetrail.audit.cli", "rebuild-from-kafka", "--poll-seconds", "1"],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "recorded up to" in rebuilt.stdout
    assert "audit store rebuilt from Kafka" in rebuilt.stdout

    with psycopg.connect(stack.postgres.owner_url(fresh)) as conn:
        for case_id, records in live.items():
            rows = conn.execute(
                "SELECT case_seq, event_id, envelope, prev_hash, hash FROM audit_records"
                " WHERE case_id = %s ORDER BY case_seq",
                (case_id,),
            ).fetchall()
            again = [StoredRecord(*row) for row in rows]
            # Every event the live store holds came back, in an order whose chain holds.
            assert {str(r.event_id) for r in again} >= {r["event_id"] for r in records}
            assert verify_chain(again, len(again)) is None


def test_every_recorded_case_replays_to_the_same_bytes_twice(stack, wait_for):
    from casetrail.audit.domain import as_it_stood, case_events
    from casetrail.contracts.case import fold, state_hash

    case_id = open_case(stack, "Replay me")
    wait_for(lambda: has_types(stack, case_id, "casetrail.case.assigned.v1"), timeout=60)
    settled_count = wait_for(lambda: quiet(stack, case_id), timeout=60)
    instant = datetime.now(UTC)
    served = httpx.get(
        audit(stack, f"/v1/cases/{case_id}/state"),
        params={"as_of": instant.isoformat()},
        headers=as_auditor(stack),
    ).json()
    with psycopg.connect(stack.database_url("audit")) as conn:
        rows = conn.execute(
            "SELECT case_id, envelope FROM audit_records ORDER BY case_id, case_seq"
        ).fetchall()
    histories: dict[str, list[Envelope]] = {}
    for owner, raw in rows:
        histories.setdefault(str(owner), []).append(Envelope.model_validate_json(raw))

    def replay(history: list[Envelope]) -> str:
        return state_hash(fold(case_events(history)))

    first = {owner: replay(history) for owner, history in histories.items()}
    second = {owner: replay(list(history)) for owner, history in histories.items()}
    assert first == second and case_id in first
    # The service folds with the very same code: the same events give the same hash.
    mine = as_it_stood(histories[case_id], instant)
    assert served["events_folded"] == len(mine) == settled_count
    assert served["state_hash"] == state_hash(fold(mine))


def quiet(stack: Any, case_id: str) -> int | None:
    """The case's record count, once it has stayed the same for two seconds."""
    before = len(history(stack, case_id)["records"])
    time.sleep(2)
    return before if len(history(stack, case_id)["records"]) == before else None
