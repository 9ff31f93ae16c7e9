"""The durable timer against a real PostgreSQL: each timer fires exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import CaseTriaged, ClockKind
from casetrail.contracts.topics import TRIAGE_EVENTS
from casetrail.runtime.consumer import Delivery, EventSourcedHandler
from casetrail.runtime.service import Components, Service
from casetrail.sla_timer.domain import Clock, clock_id_for
from casetrail.sla_timer.handlers import decider, fire_due_timers
from casetrail.sla_timer.policy import load_policy
from casetrail.sla_timer.settings import SlaTimerSettings
from casetrail.sla_timer.store import SlaApplication, tables

pytestmark = pytest.mark.integration

POLICY = load_policy()
CALENDAR = POLICY.calendar.build()
OPENED = datetime(2026, 11, 23, 15, tzinfo=UTC)  # a Monday, 10:00 in New York


@pytest.fixture(scope="module")
def settings(stack) -> SlaTimerSettings:
    return SlaTimerSettings(
        database_url=stack.postgres.ensure_service_database("sla_timer_scheduler_test"),
        schema_database_url=stack.postgres.owner_url("sla_timer_scheduler_test"),
        kafka_bootstrap=stack.kafka.bootstrap(),
        auth_shared_secret=stack.auth_secret(),
    )


async def replica(settings: SlaTimerSettings) -> tuple[Service, Components]:
    service = Service(
        settings,
        title="sla-timer replica",
        application=SlaApplication,
        tables=tables,
    )
    return service, await service.connect()


def triaged_delivery(offset: int, severity: str = "S3") -> Delivery:
    case_id = uuid4()
    data = CaseTriaged(
        case_id=case_id,
        severity=severity,
        case_type="General",
        high_priority=False,
        tier=1,
        channel="email",
        opened_at=OPENED,
        rules_fired=("SEV-DEFAULT-S3",),
        policy_version="test",
    )
    envelope = Envelope(
        id=uuid4(),
        source="/test",
        type=CaseTriaged.TYPE,
        time=OPENED,
        subject=case_id,
        correlationid=uuid4(),
        sequence=1,
        data=data.model_dump(mode="json"),
    )
    return Delivery(TRIAGE_EVENTS, 0, offset, envelope, data)


def breaches_in_store(app: SlaApplication) -> list[UUID]:
    notifications = app.recorder.select_notifications(start=None, limit=100_000)
    return [n.originator_id for n in notifications if n.topic.endswith(Clock.Breached.__qualname__)]


async def start_clocks(components: Components, deliveries: list[Delivery]) -> None:
    handler = EventSourcedHandler(components.app, decider(components.app, POLICY, CALENDAR))
    for delivery in deliveries:
        await handler.handle(delivery)


_offsets = iter(range(1_000_000))


def next_deliveries(count: int, severity: str = "S3") -> list[Delivery]:
    return [triaged_delivery(next(_offsets), severity) for _ in range(count)]


async def test_a_timer_fires_at_its_deadline_and_never_again(settings):
    _, components = await replica(settings)
    delivery = next_deliveries(1)[0]
    await start_clocks(components, [delivery])
    # Redelivery of the same record and a republished copy start nothing new.
    await start_clocks(components, [delivery])
    first_response_deadline = datetime(2026, 11, 23, 19, tzinfo=UTC)  # 14:00 in New York

    before = breaches_in_store(components.app)
    assert (
        await fire_due_timers(
            components, POLICY, settings, first_response_deadline - timedelta(seconds=1)
        )
        == 0
    )
    assert await fire_due_timers(components, POLICY, settings, first_response_deadline) == 1
    assert (
        await fire_due_timers(
            components, POLICY, settings, first_response_deadline + timedelta(hours=1)
        )
        == 0
    )
    assert len(breaches_in_store(components.app)) == len(before) + 1


async def test_two_replicas_never_fire_the_same_timer_twice(settings):
    (_, first), (_, second) = await replica(settings), await replica(settings)
    deliveries = next_deliveries(25)
    await start_clocks(first, deliveries)
    before = breaches_in_store(first.app)

    much_later = OPENED + timedelta(days=30)
    fired = await asyncio.gather(
        *(fire_due_timers(c, POLICY, settings, much_later) for c in (first, second, first, second))
    )
    new = breaches_in_store(first.app)[len(before) :]
    assert sum(fired) == len(new)
    assert len(new) == len(set(new)), "a clock breached twice"
    expected = {clock_id_for(d.data.case_id, kind) for d in deliveries for kind in ClockKind}
    assert expected <= set(new)


async def test_timers_due_while_the_service_was_down_fire_late_on_start(settings):
    _, components = await replica(settings)
    await start_clocks(components, next_deliveries(1, severity="S1"))
    # The service comes back a day later: the S1 clocks fire now, marked late.
    after_downtime = OPENED + timedelta(days=2)
    assert await fire_due_timers(components, POLICY, settings, after_downtime) >= 2
    notifications = components.app.recorder.select_notifications(start=None, limit=100_000)
    breach = components.app.mapper.to_domain_event(notifications[-1])
    assert isinstance(breach, Clock.Breached)
    assert breach.late is True
