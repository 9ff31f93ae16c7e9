"""Wiring: intake's FastAPI app, its event store and its outbox relay."""

from fastapi import FastAPI

from casetrail.contracts.topics import INTAKE_EVENTS
from casetrail.intake.api import router
from casetrail.intake.settings import IntakeSettings
from casetrail.intake.store import IntakeApplication
from casetrail.runtime.service import Service


def create_app(settings: IntakeSettings | None = None) -> FastAPI:
    settings = settings or IntakeSettings()
    service = Service(
        settings,
        title="Casetrail intake",
        application=IntakeApplication,
        publishes_to=INTAKE_EVENTS,
    )
    return service.build_app(router)
