"""The outbox relay: publishes a service's notification log to its Kafka topic.

Events are first stored by the eventsourcing library (the notification log is written in
the same transaction as the events), then published here with acks=all. The relayed
position is recorded after the broker acknowledged, so a crash republishes the tail of
the log rather than losing it; republished events carry the same CloudEvent id and bytes,
and every consumer treats them as the repeats they are. Only one replica relays at a
time: the holder of a PostgreSQL advisory lock.
"""

from __future__ import annotations

import asyncio
import zlib
from typing import Any

import psycopg
from eventsourcing.persistence import Tracking
from prometheus_client import Counter

from casetrail.contracts.topics import partition_key
from casetrail.runtime.eventstore import ServiceApplication, to_envelope
from casetrail.runtime.kafka import KafkaConnection, build_producer
from casetrail.runtime.logs import log

RELAYED = Counter("casetrail_events_relayed_total", "Events published from the outbox", ["topic"])


class OutboxRelay:
    def __init__(
        self,
        *,
        app: ServiceApplication,
        database_url: str,
        kafka: KafkaConnection,
        topic: str,
        source: str,
        poll_seconds: float = 0.1,
        batch_size: int = 500,
    ) -> None:
        self.app = app
        self.database_url = database_url
        self.kafka = kafka
        self.topic = topic
        self.source = source
        self.poll_seconds = poll_seconds
        self.batch_size = batch_size
        self.position_name = f"outbox:{topic}"
        self.stopping = asyncio.Event()

    async def stop(self) -> None:
        self.stopping.set()

    async def run(self) -> None:
        lock_key = zlib.crc32(self.position_name.encode())
        while not self.stopping.is_set():
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.database_url, autocommit=True, connect_timeout=5
                ) as lock_connection:
                    await self._become_leader(lock_connection, lock_key)
                    producer = build_producer(self.kafka, f"{self.source}/relay")
                    await producer.start()
                    try:
                        await self._relay(producer, lock_connection)
                    finally:
                        # Flush before the lock goes, so a successor's copies come after ours.
                        await producer.stop()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("relay_restarting", topic=self.topic, error=repr(error))
                await asyncio.sleep(1.0)

    async def _become_leader(self, connection: psycopg.AsyncConnection, key: int) -> None:
        while not self.stopping.is_set():
            row = await (
                await connection.execute("SELECT pg_try_advisory_lock(%s)", (key,))
            ).fetchone()
            if row and row[0]:
                log.info("relay_leader", topic=self.topic)
                return
            await asyncio.sleep(1.0)

    async def _relay(self, producer: Any, lock_connection: psycopg.AsyncConnection) -> None:
        last = await asyncio.to_thread(self.app.position, self.position_name) or 0
        while not self.stopping.is_set():
            notifications = await asyncio.to_thread(
                self.app.recorder.select_notifications,
                start=last,
                limit=self.batch_size,
                inclusive_of_start=False,
            )
            # Leadership lives as long as the lock's session: prove it before each batch.
            await lock_connection.execute("SELECT 1")
            if not notifications:
                await asyncio.sleep(self.poll_seconds)
                continue
            acknowledgements = []
            for notification in notifications:
                envelope = to_envelope(self.app.recorded_event(notification), self.source)
                if envelope is None:
                    continue
                acknowledgements.append(
                    await producer.send(
                        self.topic,
                        value=envelope.to_bytes(),
                        key=partition_key(envelope.subject),
                        headers=envelope.kafka_headers(),
                    )
                )
            await asyncio.gather(*acknowledgements)
            last = notifications[-1].id
            await asyncio.to_thread(self.app.record_position, Tracking(self.position_name, last))
            RELAYED.labels(self.topic).inc(len(acknowledgements))
