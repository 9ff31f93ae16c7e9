"""A poison message goes to its topic's dead-letter topic, and consumers keep going."""

from __future__ import annotations

import asyncio
import json
import uuid

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from casetrail.contracts.topics import INTAKE_EVENTS, dead_letter_topic

pytestmark = pytest.mark.e2e


async def test_poison_messages_are_dead_lettered_with_their_error(stack):
    marker = uuid.uuid4().hex
    not_json = f"not json {marker}".encode()
    unknown_type = json.dumps(
        {
            "id": str(uuid.uuid4()),
            "source": "/somewhere",
            "type": "casetrail.case.teleported.v9",
            "specversion": "1.0",
            "time": "2026-11-23T10:00:00Z",
            "subject": str(uuid.uuid4()),
            "correlationid": str(uuid.uuid4()),
            "sequence": 1,
            "data": {"marker": marker},
        }
    ).encode()
    producer = AIOKafkaProducer(bootstrap_servers=stack.kafka.bootstrap())
    await producer.start()
    try:
        for poison in (not_json, unknown_type):
            await producer.send_and_wait(INTAKE_EVENTS, poison, key=marker.encode())
    finally:
        await producer.stop()

    consumer = AIOKafkaConsumer(
        dead_letter_topic(INTAKE_EVENTS),
        bootstrap_servers=stack.kafka.bootstrap(),
        auto_offset_reset="earliest",
        group_id=f"test-{marker}",
    )
    await consumer.start()
    found: dict[tuple[bytes, str], dict[str, bytes]] = {}
    try:
        async with asyncio.timeout(60):
            while len(found) < 8:  # two poisons, dead-lettered by each of four consumer groups
                batches = await consumer.getmany(timeout_ms=1000)
                for records in batches.values():
                    for record in records:
                        if marker.encode() in record.value:
                            headers = dict(record.headers)
                            found[(record.value, headers["dlq-consumer-group"].decode())] = headers
    finally:
        await consumer.stop()

    assert {group for _, group in found} == {"triage", "sla-timer", "refunds", "audit"}
    assert {value for value, _ in found} == {not_json, unknown_type}
    errors = {value: h["dlq-error"].decode() for (value, _), h in found.items()}
    assert "not a Casetrail CloudEvent" in errors[not_json]
    assert "unknown event type 'casetrail.case.teleported.v9'" in errors[unknown_type]
    assert all(h["dlq-original-topic"] == INTAKE_EVENTS.encode() for h in found.values())

    # The consumers went on: a case opened now is triaged as usual.
    async with httpx.AsyncClient() as http:
        response = await http.post(
            f"{stack.service_url('intake')}/v1/cases",
            json={"channel": "chat", "customer_ref": "c-1", "subject": "Hi", "description": "Help"},
            headers=stack.auth_headers("channel"),
        )
        triage_url = f"{stack.service_url('triage')}/v1/cases/{response.json()['case_id']}/triage"
        async with asyncio.timeout(60):
            agent = stack.auth_headers("agent")
            while (await http.get(triage_url, headers=agent)).status_code != 200:
                await asyncio.sleep(0.25)
