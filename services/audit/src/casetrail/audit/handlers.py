"""Audit's reaction to every event on every topic: record it in the chain."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.audit.store import record_event
from casetrail.runtime.consumer import Delivery
from casetrail.runtime.logs import log


async def on_event(conn: AsyncConnection, delivery: Delivery) -> None:
    outcome = await record_event(
        conn, delivery.envelope, (delivery.topic, delivery.partition, delivery.offset)
    )
    if outcome != "recorded":
        log.info(
            "audit_event_" + outcome,
            event_id=str(delivery.envelope.id),
            type=delivery.envelope.type,
        )
