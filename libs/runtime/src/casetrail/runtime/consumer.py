"""The tracked consumer: each event's effects and its Kafka position commit together.

A redelivered event (after a crash, a rebalance, a re-published outbox record) finds its
position already recorded, or its effects already present, and has no second effect.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from eventsourcing.persistence import IntegrityError as EventStoreIntegrityError
from eventsourcing.persistence import Tracking
from prometheus_client import Counter, Gauge
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import ContractError, Payload, parse
from casetrail.runtime.eventstore import ServiceApplication, Statement
from casetrail.runtime.faults import is_transient
from casetrail.runtime.kafka import KafkaConnection, build_consumer, dead_letter
from casetrail.runtime.logs import log

CONSUMED = Counter("casetrail_events_consumed_total", "Events handled", ["topic", "type"])
DEAD_LETTERED = Counter("casetrail_events_dead_lettered_total", "Events sent to DLQ", ["topic"])
# How a consumer group shares its partitions among the replicas: one gauge per replica.
PARTITIONS_OWNED = Gauge(
    "casetrail_partitions_assigned", "Partitions this replica consumes", ["group"]
)


def position_name(topic: str, partition: int) -> str:
    return f"{topic}:{partition}"


@dataclass(frozen=True)
class Delivery:
    """One consumed record, parsed: where it came from and what it says."""

    topic: str
    partition: int
    offset: int
    envelope: Envelope
    data: Payload

    @property
    def position_name(self) -> str:
        return position_name(self.topic, self.partition)

    @property
    def next_offset(self) -> int:
        return self.offset + 1


class Handler(Protocol):
    async def next_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        """The recorded next offset to read for each partition it has seen."""

    async def handle(self, delivery: Delivery) -> None:
        """Applies the event and records its position atomically; a repeat is a no-op."""

    async def skip(self, topic: str, partition: int, offset: int) -> None:
        """Records the position of a record that was dead-lettered instead of handled."""


@dataclass
class Effects:
    """What handling one event changes in a service's event store."""

    aggregates: list[Any] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)


class EventSourcedHandler:
    """Handles events whose effects are new aggregate events, tracked by the process recorder."""

    def __init__(
        self, app: ServiceApplication, decide: Callable[[Delivery], Effects], attempts: int = 5
    ) -> None:
        self.app = app
        self.decide = decide
        self.attempts = attempts

    async def next_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        found = {}
        for tp in partitions:
            recorded = await asyncio.to_thread(
                self.app.position, position_name(tp.topic, tp.partition)
            )
            if recorded is not None:
                found[tp] = recorded
        return found

    async def handle(self, delivery: Delivery) -> None:
        await asyncio.to_thread(self._handle, delivery)

    def _handle(self, delivery: Delivery) -> None:
        tracking = Tracking(delivery.position_name, delivery.next_offset)
        for attempt in range(self.attempts):
            if self.app.is_tracked(delivery.position_name, delivery.next_offset):
                return
            effects = self.decide(delivery)
            try:
                self.app.save_tracked(
                    *effects.aggregates, tracking=tracking, statements=effects.statements
                )
                return
            except EventStoreIntegrityError:
                # Either another writer moved an aggregate on, or this position was
                # recorded meanwhile: look again with fresh state.
                if attempt + 1 == self.attempts:
                    raise

    async def skip(self, topic: str, partition: int, offset: int) -> None:
        tracking = Tracking(position_name(topic, partition), offset + 1)
        await asyncio.to_thread(self.app.record_position, tracking)


positions_metadata = MetaData()
consumer_positions = Table(
    "consumer_positions",
    positions_metadata,
    Column("consumer", String(200), primary_key=True),
    Column("topic", String(255), primary_key=True),
    Column("partition", Integer, primary_key=True),
    Column("next_offset", BigInteger, nullable=False),
)

SqlEffect = Callable[[AsyncConnection, Delivery], Awaitable[None]]


async def recorded_positions(
    engine: AsyncEngine, consumer: str, partitions: list[TopicPartition]
) -> dict[TopicPartition, int]:
    """The next offset a SQL consumer will handle, per partition it has handled before."""
    async with engine.connect() as conn:
        rows = await conn.execute(
            select(
                consumer_positions.c.topic,
                consumer_positions.c.partition,
                consumer_positions.c.next_offset,
            ).where(consumer_positions.c.consumer == consumer)
        )
        recorded = {TopicPartition(r.topic, r.partition): r.next_offset for r in rows}
    return {tp: recorded[tp] for tp in partitions if tp in recorded}


class SqlHandler:
    """Handles events whose effects are rows in the service's own tables (SQLAlchemy)."""

    def __init__(self, engine: AsyncEngine, consumer: str, effect: SqlEffect) -> None:
        self.engine = engine
        self.consumer = consumer
        self.effect = effect

    async def next_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        return await recorded_positions(self.engine, self.consumer, partitions)

    async def handle(self, delivery: Delivery) -> None:
        async with self.engine.begin() as conn:
            if await self._advance(conn, delivery.topic, delivery.partition, delivery.offset):
                await self.effect(conn, delivery)

    async def handle_batch(self, deliveries: list[Delivery]) -> None:
        # One commit for the batch: the durable write is paid once, not once per event; and
        # each partition's position is locked, read and written once.
        async with self.engine.begin() as conn:
            positions: dict[tuple[str, int], int] = {}
            for delivery in deliveries:
                where = (delivery.topic, delivery.partition)
                if where not in positions:
                    positions[where] = await self._locked_position(conn, *where)
                if delivery.offset < positions[where]:
                    continue  # handled before: a redelivery
                await self.effect(conn, delivery)
                positions[where] = delivery.offset + 1
            for (topic, partition), next_offset in positions.items():
                await conn.execute(
                    update(consumer_positions)
                    .where(
                        consumer_positions.c.consumer == self.consumer,
                        consumer_positions.c.topic == topic,
                        consumer_positions.c.partition == partition,
                    )
                    .values(next_offset=next_offset)
                )

    async def _locked_position(self, conn: AsyncConnection, topic: str, partition: int) -> int:
        """The partition's next offset, its row locked until the transaction ends."""
        await conn.execute(
            insert(consumer_positions)
            .values(consumer=self.consumer, topic=topic, partition=partition, next_offset=0)
            .on_conflict_do_nothing(index_elements=["consumer", "topic", "partition"])
        )
        found = await conn.execute(
            select(consumer_positions.c.next_offset)
            .where(
                consumer_positions.c.consumer == self.consumer,
                consumer_positions.c.topic == topic,
                consumer_positions.c.partition == partition,
            )
            .with_for_update()
        )
        return int(found.scalar_one())

    async def skip(self, topic: str, partition: int, offset: int) -> None:
        async with self.engine.begin() as conn:
            await self._advance(conn, topic, partition, offset)

    async def _advance(
        self, conn: AsyncConnection, topic: str, partition: int, offset: int
    ) -> bool:
        """Moves the position past `offset`, row-locked; False if it was already past it."""
        statement = insert(consumer_positions).values(
            consumer=self.consumer, topic=topic, partition=partition, next_offset=offset + 1
        )
        statement = statement.on_conflict_do_update(
            index_elements=["consumer", "topic", "partition"],
            set_={"next_offset": offset + 1},
            where=consumer_positions.c.next_offset <= offset,
        ).returning(consumer_positions.c.next_offset)
        return (await conn.execute(statement)).first() is not None


class _SeekToRecordedPositions(ConsumerRebalanceListener):
    def __init__(self, consumer: Any, handler: Handler, group_id: str) -> None:
        self.consumer = consumer
        self.handler = handler
        self.group_id = group_id

    async def on_partitions_revoked(self, revoked: Any) -> None:
        PARTITIONS_OWNED.labels(self.group_id).set(0)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        partitions = list(assigned)
        recorded = await self.handler.next_offsets(partitions)
        for tp in partitions:
            if tp in recorded:
                self.consumer.seek(tp, recorded[tp])
            else:
                await self.consumer.seek_to_beginning(tp)
        PARTITIONS_OWNED.labels(self.group_id).set(len(partitions))
        log.info(
            "partitions_assigned", partitions=[f"{tp.topic}:{tp.partition}" for tp in partitions]
        )


class TrackedConsumer:
    """Consumes topics for one consumer group and feeds a Handler, never losing a record."""

    def __init__(
        self,
        *,
        kafka: KafkaConnection,
        group_id: str,
        topics: tuple[str, ...],
        handler: Handler,
        dead_letters: AIOKafkaProducer,
        retry_seconds: float = 1.0,
        kill_after_handling: bool = False,
        attempts_before_dead_letter: int = 3,
    ) -> None:
        self.kafka = kafka
        self.group_id = group_id
        self.topics = topics
        self.handler = handler
        self.dead_letters = dead_letters
        self.retry_seconds = retry_seconds
        self.kill_after_handling = kill_after_handling
        self.attempts_before_dead_letter = attempts_before_dead_letter
        self.consumer: Any = None
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        while not self.stopping.is_set():
            self.consumer = build_consumer(self.kafka, self.group_id, self.group_id)
            try:
                await self.consumer.start()
                self.consumer.subscribe(
                    self.topics,
                    listener=_SeekToRecordedPositions(self.consumer, self.handler, self.group_id),
                )
                await self._consume()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("consumer_restarting", group=self.group_id, error=repr(error))
                await asyncio.sleep(self.retry_seconds)
            finally:
                await self.consumer.stop()

    async def stop(self) -> None:
        self.stopping.set()

    async def _consume(self) -> None:
        while not self.stopping.is_set():
            batches = await self.consumer.getmany(timeout_ms=500, max_records=200)
            for tp, records in batches.items():
                if await self._process_together(records):
                    await self._commit_for_lag_monitoring(tp, records[-1].offset + 1)
                    continue
                handled = None
                for record in records:
                    if self.stopping.is_set() or tp not in self.consumer.assignment():
                        break  # revoked mid-batch: its new owner resumes from PostgreSQL
                    if not await self._process(record):
                        break
                    handled = record
                if handled is not None:
                    await self._commit_for_lag_monitoring(tp, handled.offset + 1)

    async def _process_together(self, records: list[ConsumerRecord]) -> bool:
        """Handles a partition's batch in one transaction, when the handler can
        (`handle_batch`: consecutive events of one partition and their positions, atomically)
        and every record is a valid event; False leaves the batch to the one-by-one path, which
        retries and dead-letters record by record."""
        handle_batch = getattr(self.handler, "handle_batch", None)
        if handle_batch is None or len(records) < 2 or self.stopping.is_set():
            return False
        try:
            deliveries = [
                Delivery(r.topic, r.partition, r.offset, *parse(r.value or b"")) for r in records
            ]
        except ContractError:
            return False
        try:
            await handle_batch(deliveries)
        except Exception as error:
            log.info("batch_handled_one_by_one", records=len(records), error=repr(error))
            return False
        for delivery in deliveries:
            CONSUMED.labels(delivery.topic, delivery.envelope.type).inc()
        if self.kill_after_handling:
            os.kill(os.getpid(), signal.SIGKILL)
        return True

    async def _commit_for_lag_monitoring(self, tp: TopicPartition, next_offset: int) -> None:
        # PostgreSQL holds the real position; a failed commit (a rebalance) costs nothing.
        try:
            await self.consumer.commit({tp: next_offset})
        except (KafkaError, IllegalStateError, CommitFailedError) as error:
            log.info(
                "offset_commit_skipped", partition=f"{tp.topic}:{tp.partition}", error=repr(error)
            )

    async def _process(self, record: ConsumerRecord) -> bool:
        """Handles or dead-letters one record; False if stopping left it for later."""
        try:
            envelope, data = parse(record.value or b"")
        except ContractError as error:
            await self._dead_letter(record, f"contract: {error}")
            return True
        delivery = Delivery(record.topic, record.partition, record.offset, envelope, data)
        failures = 0
        while True:
            try:
                await self.handler.handle(delivery)
                break
            except Exception as error:
                # A dependency that is down is waited for; anything else (a race with
                # another replica, a bug) gets a few more tries before it is set aside.
                if not is_transient(error):
                    failures += 1
                    if failures >= self.attempts_before_dead_letter:
                        log.exception("event_handler_failed", event_id=str(envelope.id))
                        await self._dead_letter(record, f"handler: {error!r}")
                        return True
                log.warning("event_handler_retrying", event_id=str(envelope.id), error=repr(error))
                if self.stopping.is_set():
                    return False
                await asyncio.sleep(self.retry_seconds)
        CONSUMED.labels(record.topic, envelope.type).inc()
        if self.kill_after_handling:
            os.kill(os.getpid(), signal.SIGKILL)
        return True

    async def _dead_letter(self, record: ConsumerRecord, error: str) -> None:
        log.warning(
            "event_dead_lettered",
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            error=error[:500],
        )
        await dead_letter(self.dead_letters, record, error, self.group_id)
        DEAD_LETTERED.labels(record.topic).inc()
        await self.handler.skip(record.topic, record.partition, record.offset)
