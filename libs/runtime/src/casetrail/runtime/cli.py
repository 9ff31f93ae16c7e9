"""`casetrail`: the operator's command line.

`casetrail verify BUNDLE --key PUBLIC_KEY` checks an audit evidence bundle offline;

`casetrail dead-letters list` shows what the consumers set aside and why;
`casetrail dead-letters redrive` sends each set-aside record back to its original topic,
once, after the cause is fixed (consumers treat events they already have as repeats).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

import typer
from aiokafka import AIOKafkaConsumer, TopicPartition

from casetrail.contracts.topics import EVENT_TOPICS, dead_letter_topic
from casetrail.evidence import cli as evidence_cli
from casetrail.runtime.eventstore import ServiceApplication
from casetrail.runtime.kafka import KafkaConnection, build_producer

app = typer.Typer(help="Operate a Casetrail deployment.", no_args_is_help=True)
dead_letters = typer.Typer(help="Inspect and re-drive dead-lettered events.", no_args_is_help=True)
app.add_typer(dead_letters, name="dead-letters")
app.command("verify")(evidence_cli.verify)

REDRIVE_GROUP = "casetrail-redrive"
Topics = Annotated[
    list[str] | None, typer.Option("--topic", help="event topic (repeatable); default: all")
]


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, bytes]

    @property
    def original_topic(self) -> str:
        return self.headers.get("dlq-original-topic", b"").decode()

    def summary(self) -> dict[str, object]:
        return {
            "dead_letter": f"{self.topic}:{self.partition}:{self.offset}",
            "original": "{}:{}:{}".format(
                self.original_topic,
                self.headers.get("dlq-original-partition", b"?").decode(),
                self.headers.get("dlq-original-offset", b"?").decode(),
            ),
            "consumer_group": self.headers.get("dlq-consumer-group", b"").decode(),
            "error": self.headers.get("dlq-error", b"").decode(),
            "bytes": len(self.value),
        }


async def _read(kafka: KafkaConnection, topics: list[str], group: str | None) -> list[DeadLetter]:
    """Everything in the dead-letter topics; with a group, only what it has not handled."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        group_id=group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = [
            TopicPartition(topic, p)
            for topic in topics
            for p in sorted(
                consumer.partitions_for_topic(topic) or await _partitions(consumer, topic)
            )
        ]
        consumer.assign(partitions)
        ends = await consumer.end_offsets(partitions)
        for tp in partitions:
            committed = await consumer.committed(tp) if group else None
            if committed is None:
                await consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, committed)
        found: list[DeadLetter] = []
        pending = {tp for tp in partitions if await consumer.position(tp) < ends[tp]}
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000)
            for records in batches.values():
                for record in records:
                    found.append(
                        DeadLetter(
                            record.topic,
                            record.partition,
                            record.offset,
                            record.key,
                            record.value or b"",
                            {k: v for k, v in record.headers},
                        )
                    )
            pending = {tp for tp in pending if await consumer.position(tp) < ends[tp]}
        return found
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    await consumer._client.force_metadata_update()
    return consumer.partitions_for_topic(topic) or set()


async def _redrive(kafka: KafkaConnection, topics: list[str]) -> list[DeadLetter]:
    letters = await _read(kafka, topics, REDRIVE_GROUP)
    producer = build_producer(kafka, "casetrail-redrive")
    await producer.start()
    try:
        for letter in letters:
            if letter.original_topic not in EVENT_TOPICS:
                # Not set aside by a Casetrail consumer: there is nowhere to send it back.
                typer.echo(f"skipped, no original topic: {json.dumps(letter.summary())}", err=True)
                continue
            origin = f"{letter.topic}:{letter.partition}:{letter.offset}".encode()
            headers = [(k, v) for k, v in letter.headers.items() if not k.startswith("dlq-")]
            headers.append(("dlq-redriven-from", origin))
            await producer.send_and_wait(
                letter.original_topic, letter.value, key=letter.key, headers=headers
            )
    finally:
        await producer.stop()
    # Remember what went back only after it was acknowledged: a crash re-drives, never drops.
    await _commit(kafka, letters)
    return letters


async def _commit(kafka: KafkaConnection, letters: list[DeadLetter]) -> None:
    if not letters:
        return
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), group_id=REDRIVE_GROUP, enable_auto_commit=False
    )
    await consumer.start()
    try:
        last: dict[TopicPartition, int] = {}
        for letter in letters:
            tp = TopicPartition(letter.topic, letter.partition)
            last[tp] = max(last.get(tp, -1), letter.offset + 1)
        consumer.assign(list(last))
        await consumer.commit(last)
    finally:
        await consumer.stop()


def _dead_letter_topics(topics: list[str] | None) -> list[str]:
    chosen = topics or list(EVENT_TOPICS)
    unknown = set(chosen) - set(EVENT_TOPICS)
    if unknown:
        raise typer.BadParameter(f"unknown event topics {sorted(unknown)}", param_hint="--topic")
    return [dead_letter_topic(topic) for topic in chosen]


@dead_letters.callback()
def connect(
    context: typer.Context,
    bootstrap: Annotated[str, typer.Option(envvar="KAFKA_BOOTSTRAP")],
    security_protocol: Annotated[
        str, typer.Option(envvar="KAFKA_SECURITY_PROTOCOL", help="PLAINTEXT or SASL_SSL")
    ] = "PLAINTEXT",
    sasl_username: Annotated[str | None, typer.Option(envvar="KAFKA_SASL_USERNAME")] = None,
    sasl_password: Annotated[str | None, typer.Option(envvar="KAFKA_SASL_PASSWORD")] = None,
    ca_file: Annotated[str | None, typer.Option(envvar="KAFKA_CA_FILE")] = None,
) -> None:
    """Where the brokers are, and how to authenticate (SCRAM-SHA-256 over TLS)."""
    if security_protocol not in ("PLAINTEXT", "SASL_SSL"):
        raise typer.BadParameter("PLAINTEXT or SASL_SSL", param_hint="--security-protocol")
    context.obj = KafkaConnection(
        bootstrap=bootstrap,
        security_protocol=security_protocol,  # type: ignore[arg-type]
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username=sasl_username,
        sasl_password=sasl_password,
        ca_file=ca_file,
    )


@dead_letters.command("list")
def list_dead_letters(
    context: typer.Context,
    topic: Topics = None,
    pending: Annotated[bool, typer.Option(help="only those not yet re-driven")] = False,
) -> None:
    """Print each dead letter as a JSON line: where it was, who set it aside, and why."""
    letters = asyncio.run(
        _read(context.obj, _dead_letter_topics(topic), REDRIVE_GROUP if pending else None)
    )
    for letter in letters:
        typer.echo(json.dumps(letter.summary()))
    typer.echo(f"{len(letters)} dead letters", err=True)


@dead_letters.command("redrive")
def redrive_dead_letters(context: typer.Context, topic: Topics = None) -> None:
    """Send every dead letter not yet re-driven back to its original topic, once."""
    letters = asyncio.run(_redrive(context.obj, _dead_letter_topics(topic)))
    for letter in letters:
        typer.echo(json.dumps(letter.summary()))
    typer.echo(f"{len(letters)} dead letters re-driven", err=True)


def main() -> None:
    app()


Progress = Callable[[int, int], None]
Store = TypeVar("Store", bound=ServiceApplication)


def rebuild_from_events(
    open_store: Callable[[], Store], rebuild: Callable[[Store, Progress], int], what: str, unit: str
) -> None:
    """A service command's body: rebuild a read model, printing progress, then the count."""
    store = open_store()
    try:
        count = rebuild(store, lambda done, total: typer.echo(f"rebuilt {done}/{total} {unit}"))
    finally:
        store.close()
    typer.echo(f"{what} rebuilt from events: {count} {unit}")
