"""Wiring: audit's app and its consumer of every event topic."""

from fastapi import FastAPI

from casetrail.audit.api import router
from casetrail.audit.handlers import on_event
from casetrail.audit.settings import AuditSettings
from casetrail.audit.store import install_append_only_guard, tables
from casetrail.contracts.topics import EVENT_TOPICS
from casetrail.runtime.consumer import SqlHandler
from casetrail.runtime.service import Service


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()
    service = Service(
        settings,
        title="Casetrail audit",
        tables=tables,
        schema_setup=install_append_only_guard,
        consumers=(("audit", EVENT_TOPICS, lambda c: SqlHandler(c.engine, "audit", on_event)),),
    )
    return service.build_app(router)
