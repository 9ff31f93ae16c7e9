"""Wiring: the SLA timer's app, its consumer of case events, scheduler and relay."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import FastAPI

from casetrail.contracts.topics import INTAKE_EVENTS, REFUNDS_EVENTS, SLA_EVENTS, TRIAGE_EVENTS
from casetrail.runtime.consumer import EventSourcedHandler
from casetrail.runtime.service import Service
from casetrail.sla_timer.api import router
from casetrail.sla_timer.handlers import Now, decider, scheduler
from casetrail.sla_timer.policy import load_policy
from casetrail.sla_timer.rules import calendars_of
from casetrail.sla_timer.settings import SlaTimerSettings
from casetrail.sla_timer.store import SlaApplication, tables


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(settings: SlaTimerSettings | None = None, now: Now = system_clock) -> FastAPI:
    settings = settings or SlaTimerSettings()
    policy = load_policy(settings.policy_file)
    calendars = calendars_of(policy)
    service = Service(
        settings,
        title="Casetrail SLA timer",
        application=SlaApplication,
        publishes_to=SLA_EVENTS,
        tables=tables,
        consumers=(
            (
                "sla-timer",
                (INTAKE_EVENTS, TRIAGE_EVENTS, REFUNDS_EVENTS),
                lambda c: EventSourcedHandler(c.app, decider(c.app, policy, calendars)),
            ),
        ),
        loops=(scheduler(policy, calendars, settings, now),),
    )
    app = service.build_app(router)
    app.state.calendars = calendars
    app.state.policy = policy
    app.state.now = now
    return app
