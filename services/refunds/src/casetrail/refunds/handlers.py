"""The refunds service's reactions: it learns of every case intake opens."""

from __future__ import annotations

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.contracts.events import CaseOpened
from casetrail.refunds.store import known_cases
from casetrail.runtime.consumer import Delivery


async def on_event(conn: AsyncConnection, delivery: Delivery) -> None:
    case = delivery.data
    if not isinstance(case, CaseOpened):
        return
    await conn.execute(
        insert(known_cases)
        .values(
            case_id=case.case_id,
            opened_event_id=delivery.envelope.id,
            correlation_id=delivery.envelope.correlationid,
            channel=case.channel.value,
            opened_at=case.opened_at,
        )
        .on_conflict_do_nothing(index_elements=["case_id"])
    )
