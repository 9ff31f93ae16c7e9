"""The SLA timer's reactions: start clocks on triage, and fire timers that fall due."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import text

from casetrail.contracts.events import CaseTriaged
from casetrail.runtime.consumer import Delivery, Effects
from casetrail.runtime.logs import log
from casetrail.runtime.service import Components
from casetrail.sla_timer.calendar import BusinessCalendar
from casetrail.sla_timer.domain import clock_id_for, plan_clocks, start_clock
from casetrail.sla_timer.policy import SlaPolicy
from casetrail.sla_timer.settings import SlaTimerSettings
from casetrail.sla_timer.store import SlaApplication, timer_inserted

Now = Callable[[], datetime]


def on_case_triaged(
    app: SlaApplication, policy: SlaPolicy, calendar: BusinessCalendar, delivery: Delivery
) -> Effects:
    case = delivery.data
    assert isinstance(case, CaseTriaged)
    effects = Effects()
    for plan in plan_clocks(case, policy, calendar):
        if app.clock(clock_id_for(case.case_id, plan.clock)) is not None:
            continue  # a repeat of an event already handled
        clock = start_clock(
            case, plan, policy, delivery.envelope.correlationid, delivery.envelope.id
        )
        effects.aggregates.append(clock)
        effects.statements.append(timer_inserted(clock))
    return effects


def decider(
    app: SlaApplication, policy: SlaPolicy, calendar: BusinessCalendar
) -> Callable[[Delivery], Effects]:
    def decide(delivery: Delivery) -> Effects:
        if isinstance(delivery.data, CaseTriaged):
            return on_case_triaged(app, policy, calendar, delivery)
        return Effects()

    return decide


CLAIM_DUE_TIMERS = text(
    """
    UPDATE sla_timers SET claimed_until = :lease_end, claimed_by = :worker
    WHERE clock_id IN (
        SELECT clock_id FROM sla_timers
        WHERE fired_at IS NULL AND due_at <= :now
          AND (claimed_until IS NULL OR claimed_until < :now)
        ORDER BY due_at
        LIMIT :batch
        FOR UPDATE SKIP LOCKED
    )
    RETURNING clock_id
    """
)


async def fire_due_timers(
    components: Components, policy: SlaPolicy, settings: SlaTimerSettings, now: datetime
) -> int:
    """Claims due timers (a lease, so replicas share the work) and fires each once."""
    app = components.app
    assert isinstance(app, SlaApplication)
    async with components.engine.begin() as conn:
        rows = await conn.execute(
            CLAIM_DUE_TIMERS,
            {
                "now": now,
                "lease_end": now + timedelta(seconds=settings.scheduler_lease_seconds),
                "worker": f"{settings.service_name}:{os.getpid()}",
                "batch": settings.scheduler_batch_size,
            },
        )
        claimed = [row.clock_id for row in rows]
    late_after = timedelta(seconds=policy.late_after_seconds)
    fired = 0
    for clock_id in claimed:
        try:
            if await asyncio.to_thread(app.fire, clock_id, now, late_after):
                fired += 1
        except Exception as error:
            # Its lease runs out and a later round (or another replica) fires it.
            log.warning("timer_fire_failed", clock_id=str(clock_id), error=repr(error))
    return fired


def scheduler(policy: SlaPolicy, settings: SlaTimerSettings, now: Now):
    async def run(components: Components, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                fired = await fire_due_timers(components, policy, settings, now())
                if fired:
                    log.info("timers_fired", count=fired)
            except Exception as error:
                log.warning("scheduler_retrying", error=repr(error))
            try:
                await asyncio.wait_for(stopping.wait(), settings.scheduler_poll_seconds)
            except TimeoutError:
                pass

    return run
