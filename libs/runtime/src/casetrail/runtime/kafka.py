"""Kafka clients configured the one way Casetrail uses them, and the dead-letter path."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord
from aiokafka.helpers import create_ssl_context

from casetrail.contracts.topics import dead_letter_topic

SecurityProtocol = Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"]


@dataclass(frozen=True)
class KafkaConnection:
    """Where the brokers are and how to authenticate to them (SASL/SCRAM over TLS)."""

    bootstrap: str
    security_protocol: SecurityProtocol = "PLAINTEXT"
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: str | None = None
    ca_file: str | None = None

    def client_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_context"] = create_ssl_context(cafile=self.ca_file)
        if self.security_protocol.startswith("SASL"):
            options["sasl_mechanism"] = self.sasl_mechanism
            options["sasl_plain_username"] = self.sasl_username
            options["sasl_plain_password"] = self.sasl_password
        return options


def build_producer(kafka: KafkaConnection, client_id: str) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps per-partition order across retries.
    return AIOKafkaProducer(
        **kafka.client_options(),
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=15_000,
    )


def build_consumer(kafka: KafkaConnection, group_id: str, client_id: str) -> AIOKafkaConsumer:
    # Positions live in PostgreSQL with the effects; Kafka's committed offsets only show lag.
    return AIOKafkaConsumer(
        **kafka.client_options(),
        group_id=group_id,
        client_id=client_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=200,
        session_timeout_ms=10_000,
        heartbeat_interval_ms=2_000,
    )


async def kafka_reachable(client_holder: AIOKafkaProducer) -> bool:
    try:
        await client_holder.client.fetch_all_metadata()
    except Exception:
        return False
    return True


async def dead_letter(
    producer: AIOKafkaProducer, record: ConsumerRecord, error: str, consumer_group: str
) -> None:
    """Sends the original bytes, untouched, with the error and origin in headers."""
    headers = [
        *(record.headers or ()),
        ("dlq-error", error.encode()[:8000]),
        ("dlq-original-topic", record.topic.encode()),
        ("dlq-original-partition", str(record.partition).encode()),
        ("dlq-original-offset", str(record.offset).encode()),
        ("dlq-consumer-group", consumer_group.encode()),
    ]
    await producer.send_and_wait(
        dead_letter_topic(record.topic), value=record.value, key=record.key, headers=headers
    )
