"""The durable timer against a real PostgreSQL: each timer fires exactly once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import CaseTriaged
from casetrail.contracts.topics import TRIAGE_EVENTS
from casetrail.runtime.consumer import Delivery, EventSourcedHandler
from casetrail.runtime.service import Components, Service
from casetrail.sla_timer.domain import CaseClocks, clock_id_for
from casetrail.sla_timer.handlers import decider, fire_due_timers
from casetrail.sla_timer.policy import load_policy
from casetrail.sla_timer.rules import calendars_of
from casetrail.sla_timer.settings import SlaTimerSettings
from casetrail.sla_timer.store import SlaApplication, tables

pytestmark = pytest.mark.integration

POLICY = load_policy()
CALENDARS = calendars_of(POLICY)
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


def stored(app: SlaApplication, event_class: type) -> list[object]:
    notifications = app.recorder.select_notifications(start=None, limit=1_000_000)
    return [
        app.mapper.to_domain_event(n)
        for n in notifications
        if n.topic.endswith(event_class.__qualname__)
    ]


def breaches(app: SlaApplication) -> list[UUID]:
    return [event.clock_id for event in stored(app, CaseClocks.ClockBreached)]


async def start_clocks(components: Components, deliveries: list[Delivery]) -> None:
    handler = EventSourcedHandler(components.app, decider(components.app, POLICY, CALENDARS))
    for delivery in deliveries:
        await handler.handle(delivery)


_offsets = iter(range(1_000_000))


def next_deliveries(count: int, severity: str = "S3") -> list[Delivery]:
    return [triaged_delivery(next(_offsets), severity) for _ in range(count)]


async def fire(components: Components, settings: SlaTimerSettings, now: datetime) -> int:
    return await fire_due_timers(components, POLICY, CALENDARS, settings, now)


async def test_a_timer_fires_at_its_deadline_and_never_again(settings):
    _, components = await replica(settings)
    delivery = next_deliveries(1)[0]
    await start_clocks(components, [delivery])
    # Redelivery of the same record and a republished copy start nothing new.
    await start_clocks(components, [delivery])
    email_clock = clock_id_for(delivery.data.case_id, "FR-CHANNEL-email")
    deadline = datetime(2026, 11, 23, 19, tzinfo=UTC)  # four business hours: 14:00 in New York

    before = breaches(components.app)
    await fire(components, settings, deadline - timedelta(seconds=1))  # its warnings
    assert email_clock not in breaches(components.app)
    assert await fire(components, settings, deadline) >= 1
    assert await fire(components, settings, deadline + timedelta(minutes=1)) == 0
    new = breaches(components.app)[len(before) :]
    assert new.count(email_clock) == 1


async def test_two_replicas_never_fire_the_same_timer_twice(settings):
    (_, first), (_, second) = await replica(settings), await replica(settings)
    deliveries = next_deliveries(25)
    await start_clocks(first, deliveries)
    before = breaches(first.app)

    much_later = OPENED + timedelta(days=30)
    for _ in range(3):  # warnings first, then breaches: each round fires what fell due
        await asyncio.gather(*(fire(c, settings, much_later) for c in (first, second) * 2))
    new = breaches(first.app)[len(before) :]
    assert len(new) == len(set(new)), "a clock breached twice"
    expected = {
        clock_id_for(d.data.case_id, rule)
        for d in deliveries
        for rule in ("FR-CHANNEL-email", "FR-SEV-S3", "RES-SEV-S3", "RES-TYPE-General")
    }
    assert expected <= set(new)


async def test_timers_due_while_the_service_was_down_fire_late_on_start(settings):
    _, components = await replica(settings)
    delivery = next_deliveries(1, severity="S1")[0]
    await start_clocks(components, [delivery])
    # The service comes back two days later: the S1 clocks fire now, marked late.
    after_downtime = OPENED + timedelta(days=2)
    assert await fire(components, settings, after_downtime) >= 2
    late = {
        event.clock_id: event.late
        for event in stored(components.app, CaseClocks.ClockBreached)
        if event.case_id == delivery.data.case_id
    }
    assert late[clock_id_for(delivery.data.case_id, "FR-SEV-S1")] is True
    assert all(late.values())


async def test_repair_recomputes_open_clocks_under_a_new_policy_and_reschedules_them(settings):
    _, components = await replica(settings)
    delivery = next_deliveries(1)[0]
    await start_clocks(components, [delivery])
    changed = POLICY.model_dump(mode="json")
    for rule in changed["rules"]:
        if rule["rule_id"] == "FR-CHANNEL-email":
            rule["minutes"] = 120
    changed["version"] = "repaired"
    newer = type(POLICY).model_validate(changed)
    app = components.app

    corrected = await asyncio.to_thread(app.repair, newer, calendars_of(newer), OPENED)
    assert corrected >= 1
    case = app.case_clocks(delivery.data.case_id)
    email_clock = clock_id_for(delivery.data.case_id, "FR-CHANNEL-email")
    assert case.clocks[email_clock].deadline == datetime(2026, 11, 23, 17, tzinfo=UTC)
    recomputed = [e for e in stored(app, CaseClocks.ClockRecomputed) if e.clock_id == email_clock]
    assert [e.policy_version for e in recomputed] == ["repaired"]
    # The breach timer moved with the deadline: it fires at the new one, once.
    fired = await fire_due_timers(
        components, newer, calendars_of(newer), settings, case.clocks[email_clock].deadline
    )
    assert fired >= 1
    assert breaches(app).count(email_clock) == 1
    # Repairing again under the same policy changes nothing.
    assert await asyncio.to_thread(app.repair, newer, calendars_of(newer), OPENED) == 0
