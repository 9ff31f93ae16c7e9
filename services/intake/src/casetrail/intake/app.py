"""Wiring: intake's FastAPI app, its event store, its outbox relay and its consumer."""

from functools import partial

from fastapi import FastAPI

from casetrail.contracts.topics import INTAKE_EVENTS, TRIAGE_EVENTS
from casetrail.intake.api import router
from casetrail.intake.handlers import on_event
from casetrail.intake.policy import load_policy
from casetrail.intake.provider_api import webhooks
from casetrail.intake.settings import IntakeSettings
from casetrail.intake.store import IntakeApplication, tables
from casetrail.runtime.consumer import SqlHandler
from casetrail.runtime.service import Service


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    policy = load_policy(settings.policy_file)
    application = partial(
        IntakeApplication, attachment_dir=settings.attachment_dir, keyring=settings.keyring()
    )
    service = Service(
        settings,
        title="Casetrail intake",
        application=application,
        publishes_to=INTAKE_EVENTS,
        tables=tables,
        consumers=(
            ("intake", (TRIAGE_EVENTS,), lambda c: SqlHandler(c.engine, "intake", on_event)),
        ),
    )
    app = service.build_app(router, provider_signed=webhooks)
    app.state.policy = policy
    return app
