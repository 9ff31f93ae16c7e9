"""The refunds service's reactions: it learns of cases, and pays out what is ready."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.contracts.events import CaseOpened, CaseTriaged
from casetrail.refunds.settings import RefundsSettings
from casetrail.refunds.store import RefundsApplication, known_cases
from casetrail.runtime.consumer import Delivery
from casetrail.runtime.logs import log
from casetrail.runtime.service import BackgroundLoop, Components, periodically

Now = Callable[[], datetime]


async def on_event(conn: AsyncConnection, delivery: Delivery) -> None:
    """Every case intake opens, with its type once triage has classified it."""
    case = delivery.data
    if not isinstance(case, CaseOpened | CaseTriaged):
        return
    row = insert(known_cases).values(
        case_id=case.case_id,
        opened_event_id=delivery.envelope.id,
        correlation_id=delivery.envelope.correlationid,
        channel=case.channel.value,
        opened_at=case.opened_at,
        case_type=case.case_type.value if isinstance(case, CaseTriaged) else None,
    )
    if isinstance(case, CaseTriaged):
        row = row.on_conflict_do_update(
            index_elements=["case_id"], set_={"case_type": row.excluded.case_type}
        )
    else:
        row = row.on_conflict_do_nothing(index_elements=["case_id"])
    await conn.execute(row)


CLAIM_READY = text(
    """
    UPDATE refund_requests SET claimed_until = :lease_end
    WHERE refund_id IN (
        SELECT refund_id FROM refund_requests
        WHERE status = 'ready' AND (claimed_until IS NULL OR claimed_until < :now)
        ORDER BY updated_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING refund_id
    """
)


def payer(settings: RefundsSettings, now: Now) -> BackgroundLoop:
    """Claims requests ready to pay (a lease, so replicas share them) and pays each once."""

    async def pay_out_ready(components: Components) -> int:
        app = components.app
        assert isinstance(app, RefundsApplication)
        moment = now()
        async with components.engine.begin() as conn:
            rows = await conn.execute(
                CLAIM_READY,
                {
                    "now": moment,
                    "lease_end": moment + timedelta(seconds=settings.payout_lease_seconds),
                    "batch": settings.payout_batch_size,
                },
            )
            claimed = [row.refund_id for row in rows]
        paid = 0
        for refund_id in claimed:
            try:
                paid += await asyncio.to_thread(app.pay_out, refund_id, moment)
            except Exception as error:
                # The lease runs out and a later round (or another replica) pays it.
                log.warning("payout_failed", refund_id=str(refund_id), error=repr(error))
        return paid

    return periodically(pay_out_ready, settings.payout_poll_seconds, did="payouts_made")
