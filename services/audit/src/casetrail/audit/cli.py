"""Operations on audit's store: `python -m casetrail.audit.cli --help`."""

from __future__ import annotations

import asyncio

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from casetrail.audit.app import audit_service
from casetrail.audit.settings import AuditSettings
from casetrail.contracts.topics import EVENT_TOPICS
from casetrail.runtime.consumer import recorded_positions
from casetrail.runtime.kafka import KafkaConnection

app = typer.Typer(help="Audit operations (reads AUDIT_* settings from the environment).")


@app.callback()
def main() -> None:
    """Audit operations."""


@app.command("rebuild-from-kafka")
def rebuild_from_kafka(
    poll_seconds: float = typer.Option(2.0, help="how often progress is printed"),
) -> None:
    """Records every event on every topic, from its first offset, into AUDIT_DATABASE_URL.

    Run it with a fresh database and its own AUDIT_CONSUMER_GROUP: the event topics keep
    everything forever, so the store comes back whole. It stops once it has reached the
    end each partition had when it started; run again, it goes on where it stopped.
    """
    recorded, total = asyncio.run(_rebuild(AuditSettings(), poll_seconds))  # type: ignore[call-arg]
    typer.echo(f"audit store rebuilt from Kafka: {recorded}/{total} offsets")


async def _end_offsets(kafka: KafkaConnection) -> dict[TopicPartition, int]:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        described = await admin.describe_topics(list(EVENT_TOPICS))
    finally:
        await admin.close()
    partitions = [
        TopicPartition(topic["topic"], partition["partition"])
        for topic in described
        for partition in topic["partitions"]
    ]
    probe = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await probe.start()
    try:
        return dict(await probe.end_offsets(partitions))
    finally:
        await probe.stop()


async def _rebuild(settings: AuditSettings, poll_seconds: float) -> tuple[int, int]:
    ends = {tp: end for tp, end in (await _end_offsets(settings.kafka)).items() if end}
    total = sum(ends.values())
    service = audit_service(settings)
    async with service.running():
        while True:
            await asyncio.sleep(poll_seconds)
            if service.components is None:
                typer.echo("connecting to PostgreSQL and Kafka...")
                continue
            positions = await recorded_positions(
                service.components.engine, settings.consumer_group, list(ends)
            )
            recorded = sum(min(positions.get(tp, 0), end) for tp, end in ends.items())
            typer.echo(f"recorded up to {recorded}/{total} offsets")
            if recorded >= total:
                return recorded, total


if __name__ == "__main__":
    app()
