"""Intake's reactions: it follows each case's lifecycle, so a message from the customer
continues a case only while that case is still open."""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.contracts.events import CaseStatusChanged
from casetrail.intake.store import cases
from casetrail.runtime.consumer import Delivery

# After these a case takes no more messages; a new message starts a follow-up case.
FINAL_STATUSES = frozenset({"Closed", "Incomplete"})


async def on_event(conn: AsyncConnection, delivery: Delivery) -> None:
    change = delivery.data
    if not isinstance(change, CaseStatusChanged):
        return
    await conn.execute(
        update(cases)
        .where(cases.c.case_id == change.case_id)
        .values(open=change.to_status not in FINAL_STATUSES)
    )
