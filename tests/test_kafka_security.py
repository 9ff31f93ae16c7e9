"""The services reach Kafka with SASL/SCRAM over TLS when configured to."""

from __future__ import annotations

import asyncio
import uuid

import httpx
import pytest
from aiokafka.errors import KafkaError

from casetrail.runtime.kafka import KafkaConnection, build_consumer, build_producer

pytestmark = pytest.mark.e2e


def secure(stack, password: str | None = None) -> KafkaConnection:
    user, real_password = stack.kafka.sasl_credentials()
    return KafkaConnection(
        bootstrap=stack.kafka.sasl_bootstrap(),
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username=user,
        sasl_password=password or real_password,
        ca_file=str(stack.kafka.ca_file),
    )


async def test_scram_over_tls_round_trips_a_record(stack):
    marker = uuid.uuid4().hex.encode()
    producer = build_producer(secure(stack), "security-test")
    await producer.start()
    try:
        sent = await producer.send_and_wait("casetrail.intake.events.dlq", marker, key=marker)
    finally:
        await producer.stop()
    consumer = build_consumer(secure(stack), f"security-test-{marker.decode()}", "security-test")
    await consumer.start()
    try:
        consumer.assign([sent.topic_partition])
        consumer.seek(sent.topic_partition, sent.offset)
        record = await asyncio.wait_for(consumer.getone(), 30)
    finally:
        await consumer.stop()
    assert record.value == marker


async def test_a_wrong_password_is_refused(stack):
    producer = build_producer(secure(stack, password="not-the-password"), "security-test")
    with pytest.raises(KafkaError):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


def test_a_service_runs_over_sasl_ssl(stack, wait_for):
    stack.stop_service("triage")
    stack.start_service("triage", extra_env=stack.secure_kafka_env("triage"))
    try:
        case = httpx.post(
            f"{stack.service_url('intake')}/v1/cases",
            json={"channel": "chat", "customer_ref": "s", "subject": "TLS", "description": "x"},
            headers=stack.auth_headers("channel"),
        ).json()
        triage = f"{stack.service_url('triage')}/v1/cases/{case['case_id']}/triage"
        agent = stack.auth_headers("agent")
        assert wait_for(lambda: httpx.get(triage, headers=agent).status_code == 200)
    finally:
        stack.stop_service("triage")
        stack.start_service("triage")
