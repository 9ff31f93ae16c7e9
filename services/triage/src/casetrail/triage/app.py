"""Wiring: triage's FastAPI app, its consumer of intake events and its outbox relay."""

from functools import partial

from fastapi import FastAPI

from casetrail.contracts.topics import INTAKE_EVENTS, SLA_EVENTS, TRIAGE_EVENTS
from casetrail.runtime.consumer import EventSourcedHandler
from casetrail.runtime.service import Service
from casetrail.triage.api import router
from casetrail.triage.handlers import decider, shift_watch
from casetrail.triage.policy import load_policy
from casetrail.triage.settings import TriageSettings
from casetrail.triage.store import TriageApplication, tables


def create_app(settings: TriageSettings | None = None) -> FastAPI:
    settings = settings or TriageSettings()
    policy = load_policy(settings.policy_file)
    service = Service(
        settings,
        title="Casetrail triage",
        application=partial(TriageApplication, keyring=settings.keyring()),
        publishes_to=TRIAGE_EVENTS,
        tables=tables,
        loops=(shift_watch(settings.shift_check_seconds),),
        consumers=(
            (
                "triage",
                (INTAKE_EVENTS, SLA_EVENTS),
                lambda c: EventSourcedHandler(c.app, decider(c.app, policy)),
            ),
        ),
    )
    app = service.build_app(router)
    app.state.policy = policy
    return app
