"""Dead letters are listed with their errors and re-driven once, after the fix."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import CaseOpened
from casetrail.contracts.topics import INTAKE_EVENTS, dead_letter_topic, partition_key

pytestmark = pytest.mark.e2e


def casetrail(stack, *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [str(Path(sys.executable).with_name("casetrail")), "dead-letters", *args],
        env={"KAFKA_BOOTSTRAP": stack.kafka.bootstrap(), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    return run


async def test_a_dead_letter_is_redriven_once_and_then_recorded(stack, wait_for):
    # A case that a consumer once set aside because of a bug since fixed.
    case_id = uuid.uuid4()
    opened = CaseOpened(
        case_id=case_id,
        channel="web",
        customer_ref="acct-redrive",
        subject="Set aside once",
        description="This event was dead-lettered by a bug that has been fixed.",
        opened_at=datetime.now(UTC),
    )
    envelope = Envelope(
        id=uuid.uuid4(),
        source="/casetrail/intake",
        type=CaseOpened.TYPE,
        time=opened.opened_at,
        subject=case_id,
        correlationid=uuid.uuid4(),
        sequence=1,
        data=opened.model_dump(mode="json"),
    )
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap())
    await producer.start()
    try:
        await producer.send_and_wait(
            dead_letter_topic(INTAKE_EVENTS),
            envelope.to_bytes(),
            key=partition_key(case_id),
            headers=[
                ("dlq-error", b"handler: KeyError('a bug since fixed')"),
                ("dlq-original-topic", INTAKE_EVENTS.encode()),
                ("dlq-original-partition", b"0"),
                ("dlq-original-offset", b"0"),
                ("dlq-consumer-group", b"audit"),
            ],
        )
    finally:
        await producer.stop()

    listed = [
        json.loads(line) for line in casetrail(stack, "list", "--pending").stdout.splitlines()
    ]
    ours = [letter for letter in listed if "a bug since fixed" in letter["error"]]
    assert len(ours) == 1 and ours[0]["consumer_group"] == "audit"

    assert "a bug since fixed" in casetrail(stack, "redrive").stdout
    assert "a bug since fixed" not in casetrail(stack, "redrive").stdout  # once only
    assert "a bug since fixed" not in casetrail(stack, "list", "--pending").stdout

    history_url = f"{stack.service_url('audit')}/v1/cases/{case_id}/history"
    auditor = stack.auth_headers("auditor")
    records = wait_for(lambda: httpx.get(history_url, headers=auditor).json().get("records"))
    assert records[0]["event_id"] == str(envelope.id)
