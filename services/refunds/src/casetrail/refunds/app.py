"""Wiring: the refunds app, its consumer of intake events and its outbox relay."""

from fastapi import FastAPI

from casetrail.contracts.topics import INTAKE_EVENTS, REFUNDS_EVENTS
from casetrail.refunds.api import router
from casetrail.refunds.handlers import on_event
from casetrail.refunds.policy import load_policy
from casetrail.refunds.settings import RefundsSettings
from casetrail.refunds.store import RefundsApplication, tables
from casetrail.runtime.consumer import SqlHandler
from casetrail.runtime.service import Service


def create_app(settings: RefundsSettings | None = None) -> FastAPI:
    settings = settings or RefundsSettings()
    policy = load_policy(settings.policy_file)
    service = Service(
        settings,
        title="Casetrail refunds",
        application=RefundsApplication,
        publishes_to=REFUNDS_EVENTS,
        tables=tables,
        consumers=(
            ("refunds", (INTAKE_EVENTS,), lambda c: SqlHandler(c.engine, "refunds", on_event)),
        ),
    )
    app = service.build_app(router)
    app.state.policy = policy
    return app
