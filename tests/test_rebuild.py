"""End-to-end: read models are dropped and rebuilt from each service's own events, and
come back the same. (Triage's case list has its own test in test_case_lifecycle.)"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from typing import Any

import psycopg
import pytest
from test_refund_review import a_known_case, as_, request_refund

pytestmark = pytest.mark.e2e

# updated_at is when a row was last written, which a rebuild is; everything else must match.
READ_MODELS = {
    "sla_timer": (
        "casetrail.sla_timer.cli",
        "SELECT * FROM sla_clocks ORDER BY clock_id",
        "clock list rebuilt from events",
    ),
    "refunds": (
        "casetrail.refunds.cli",
        "SELECT refund_id, case_id, kind, status, awaiting, amount_minor, currency,"
        " requested_by, requested_at FROM refund_requests ORDER BY refund_id",
        "request list rebuilt from events",
    ),
}


def rows(stack: Any, service: str, query: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(stack.database_url(service)) as conn:
        found = conn.execute(query).fetchall()
    return [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in found]


def settled(stack: Any, service: str, query: str, case_id: str) -> bool:
    """The case's rows exist, a refund among them is paid out, and for two seconds they
    have not changed (its refund-window clocks start, and are met once it is paid)."""

    def mine() -> list[tuple[Any, ...]]:
        return [row for row in rows(stack, service, query) if str(row[1]) == case_id]

    first = mine()
    paid = all(row[2] != "refund" or row[3] == "issued" for row in first)
    time.sleep(2)
    return bool(first) and paid and mine() == first


@pytest.mark.parametrize("service", sorted(READ_MODELS))
def test_a_dropped_read_model_is_rebuilt_from_events_alone(stack, wait_for, service):
    module, query, said = READ_MODELS[service]
    case_id = a_known_case(stack, wait_for, "email")
    request_refund(stack, case_id, 2_500, as_(stack, "agent", "agent-rebuild"))
    # Settled first: the small refund is paid out, and the case's clocks have started.
    wait_for(lambda: settled(stack, service, query, case_id), timeout=90)
    before = rows(stack, service, query)
    table = query.split(" FROM ")[1].split()[0]

    with psycopg.connect(stack.database_url(service)) as conn:
        conn.execute(f"DELETE FROM {table}")
    # The live service goes on writing rows for other cases; this case's are gone.
    assert not [row for row in rows(stack, service, query) if str(row[1]) == case_id]
    rebuilt = subprocess.run(
        [sys.executable, "-m", module, "rebuild-read-models"],
        env={**os.environ, **stack.service_env(service)},
        capture_output=True,
        text=True,
        check=True,
    )
    assert said in rebuilt.stdout
    assert "rebuilt" in rebuilt.stdout.splitlines()[0]  # progress comes first
    after = rows(stack, service, query)
    assert [r for r in after if str(r[1]) == case_id] == [r for r in before if str(r[1]) == case_id]
    # Every row came back (other cases' rows may have moved on meanwhile: clocks fire).
    assert {row[0] for row in before} <= {row[0] for row in after}
