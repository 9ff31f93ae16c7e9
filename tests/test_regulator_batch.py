"""End-to-end: the 6,623 real CFPB complaints loaded as cases, each one counted in audit."""

from __future__ import annotations

import csv
from typing import Any

import httpx
import psycopg
import pytest

pytestmark = pytest.mark.e2e

# Canonical JSON (no spaces), so a text match is exact.
OPENED_FROM_CFPB = """
    SELECT count(*) FROM audit_records
    WHERE event_type = 'casetrail.case.opened.v1' AND envelope LIKE '%"provider":"cfpb"%'
"""


def load(stack: Any, content: bytes, content_type: str) -> httpx.Response:
    return httpx.post(
        f"{stack.service_url('intake')}/v1/regulators/cfpb/complaints",
        content=content,
        headers=stack.auth_headers("channel") | {"Content-Type": content_type},
        timeout=900,
    )


def audited_cfpb_cases(stack: Any) -> int:
    with psycopg.connect(stack.database_url("audit")) as conn:
        row = conn.execute(OPENED_FROM_CFPB).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.timeout(1800)
def test_every_cfpb_sample_row_becomes_a_case_in_audit(stack, shared_data, wait_for):
    path = shared_data / "cfpb" / "complaints_sample.csv"
    with path.open(newline="", encoding="utf-8") as file:
        rows = sum(1 for _ in csv.DictReader(file))
    response = load(stack, path.read_bytes(), "text/csv")
    assert response.status_code == 200, response.text[:2000]
    result = response.json()
    assert (result["rows"], result["opened"], result["refused"]) == (rows, rows, [])
    again = load(stack, path.read_bytes(), "text/csv").json()
    assert (again["opened"], again["already_recorded"]) == (0, rows)

    edge_cases = (shared_data / "cfpb" / "cfpb_ccdb-data-pipeline__from_s3.ndjson").read_bytes()
    mixed = load(stack, edge_cases, "application/x-ndjson").json()
    assert mixed["rows"] == len(edge_cases.splitlines())
    assert mixed["refused"] == [
        {"row": 10, "complaint_id": "3202118", "errors": ["date_received: missing"]}
    ]
    # 3366475 is in the CSV too, as an older version: the newer one continues its case.
    (update,) = [row for row in mixed["loaded"] if row["complaint_id"] == "3366475"]
    assert update["status"] == "continued"
    assert (mixed["opened"], mixed["continued"]) == (8, 1)
    loaded_total = rows + mixed["opened"]
    wait_for(lambda: audited_cfpb_cases(stack) >= loaded_total, timeout=600, every=2)
    assert audited_cfpb_cases(stack) == loaded_total
