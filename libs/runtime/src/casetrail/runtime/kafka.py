"""Kafka clients configured the one way Casetrail uses them, and the dead-letter path."""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from casetrail.contracts.topics import dead_letter_topic


def build_producer(bootstrap: str, client_id: str) -> AIOKafkaProducer:
    # Idempotence forces acks=all and keeps per-partition order across retries.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        client_id=client_id,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        request_timeout_ms=15_000,
    )


def build_consumer(bootstrap: str, group_id: str, client_id: str) -> AIOKafkaConsumer:
    # Positions live in PostgreSQL with the effects; Kafka's committed offsets only show lag.
    return AIOKafkaConsumer(
        bootstrap_servers=bootstrap,
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
