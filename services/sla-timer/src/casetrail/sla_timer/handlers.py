"""The SLA timer's reactions: case events move clocks; a scheduler fires timers that fall due."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from uuid import UUID

from sqlalchemy import text

from casetrail.contracts.events import EventData
from casetrail.runtime.consumer import Delivery, Effects
from casetrail.runtime.logs import log
from casetrail.runtime.service import BackgroundLoop, Components, periodically
from casetrail.sla_timer.calendar import BusinessCalendar
from casetrail.sla_timer.domain import CaseClocks, Timer
from casetrail.sla_timer.policy import SlaPolicy
from casetrail.sla_timer.settings import SlaTimerSettings
from casetrail.sla_timer.store import SlaApplication

Now = Callable[[], datetime]


def decider(
    app: SlaApplication, policy: SlaPolicy, calendars: Mapping[str, BusinessCalendar]
) -> Callable[[Delivery], Effects]:
    """Every case event is a fact, a satisfaction, a pause or a resumption for some clock."""

    def decide(delivery: Delivery) -> Effects:
        data = delivery.data
        if not isinstance(data, EventData):
            return Effects()
        envelope = delivery.envelope
        case = app.case_clocks(data.case_id) or CaseClocks(
            case_id=data.case_id, correlation_id=envelope.correlationid
        )
        case.observe(envelope.type, data, envelope.time, envelope.id, policy, calendars)
        if not case.pending_events:
            return Effects()
        return Effects(aggregates=[case], statements=app.schedule(case, policy, calendars))

    return decide


CLAIM_DUE_TIMERS = text(
    """
    UPDATE sla_clock_timers SET claimed_until = :lease_end, claimed_by = :worker
    WHERE timer_id IN (
        SELECT timer_id FROM sla_clock_timers
        WHERE fired_at IS NULL AND due_at <= :now
          AND (claimed_until IS NULL OR claimed_until < :now)
        ORDER BY due_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING timer_id, case_id, clock_id, purpose, due_at
    """
)


async def fire_due_timers(
    components: Components,
    policy: SlaPolicy,
    calendars: Mapping[str, BusinessCalendar],
    settings: SlaTimerSettings,
    now: datetime,
) -> int:
    """Claims due timers (a lease, so replicas share the work) and fires each once."""
    app = components.app
    assert isinstance(app, SlaApplication)
    async with components.engine.begin() as conn:
        rows = (
            await conn.execute(
                CLAIM_DUE_TIMERS,
                {
                    "now": now,
                    "lease_end": now + timedelta(seconds=settings.scheduler_lease_seconds),
                    "worker": f"{settings.service_name}:{os.getpid()}",
                    "batch": settings.scheduler_batch_size,
                },
            )
        ).all()
    fired = 0
    for row in sorted(rows, key=lambda row: row.due_at):
        timer = Timer(UUID(str(row.clock_id)), row.purpose, row.due_at)
        try:
            fired += await asyncio.to_thread(
                app.fire,
                timer,
                UUID(str(row.timer_id)),
                UUID(str(row.case_id)),
                now,
                policy,
                calendars,
            )
        except Exception as error:
            # Its lease runs out and a later round (or another replica) fires it.
            log.warning("timer_fire_failed", timer_id=str(row.timer_id), error=repr(error))
    return fired


def scheduler(
    policy: SlaPolicy,
    calendars: Mapping[str, BusinessCalendar],
    settings: SlaTimerSettings,
    now: Now,
) -> BackgroundLoop:
    async def step(components: Components) -> int:
        return await fire_due_timers(components, policy, calendars, settings, now())

    return periodically(step, settings.scheduler_poll_seconds, did="timers_fired")
