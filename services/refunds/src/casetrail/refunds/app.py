"""Wiring: the refunds app, its consumer of case events, its payer and its outbox relay."""

from collections.abc import Callable
from datetime import UTC, datetime

from fastapi import FastAPI

from casetrail.contracts.topics import INTAKE_EVENTS, REFUNDS_EVENTS, TRIAGE_EVENTS
from casetrail.refunds.api import router
from casetrail.refunds.handlers import on_event, payer
from casetrail.refunds.policy import load_policy
from casetrail.refunds.settings import RefundsSettings
from casetrail.refunds.store import RefundsApplication, tables
from casetrail.runtime.consumer import SqlHandler
from casetrail.runtime.service import Service


def system_clock() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: RefundsSettings | None = None, now: Callable[[], datetime] = system_clock
) -> FastAPI:
    settings = settings or RefundsSettings()
    policy = load_policy(settings.policy_file)
    service = Service(
        settings,
        title="Casetrail refunds",
        application=RefundsApplication,
        publishes_to=REFUNDS_EVENTS,
        tables=tables,
        consumers=(
            (
                "refunds",
                (INTAKE_EVENTS, TRIAGE_EVENTS),
                lambda c: SqlHandler(c.engine, "refunds", on_event),
            ),
        ),
        loops=(payer(settings, now),),
    )
    app = service.build_app(router)
    app.state.policy = policy
    return app
