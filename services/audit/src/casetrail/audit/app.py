"""Wiring: audit's app, its consumer of every event topic, and its tree-head publisher."""

from fastapi import FastAPI

from casetrail.audit.api import router
from casetrail.audit.handlers import on_event
from casetrail.audit.log import LogMirror, tree_head_publisher
from casetrail.audit.policy import load_policy
from casetrail.audit.settings import AuditSettings
from casetrail.audit.store import set_up_store, tables
from casetrail.contracts.topics import EVENT_TOPICS
from casetrail.evidence.tree_head import load_private_key
from casetrail.runtime.consumer import SqlHandler
from casetrail.runtime.service import BackgroundLoop, Service


def audit_service(settings: AuditSettings, loops: tuple[BackgroundLoop, ...] = ()) -> Service:
    group = settings.consumer_group
    return Service(
        settings,
        title="Casetrail audit",
        tables=tables,
        schema_setup=set_up_store,
        consumers=((group, EVENT_TOPICS, lambda c: SqlHandler(c.engine, group, on_event)),),
        loops=loops,
    )


def create_app(settings: AuditSettings | None = None) -> FastAPI:
    settings = settings or AuditSettings()  # type: ignore[call-arg]
    policy = load_policy(settings.policy_file)
    mirror = LogMirror(load_private_key(settings.signing_key_file.read_bytes()))
    publisher = tree_head_publisher(mirror, settings.tree_head_seconds)
    service = audit_service(settings, loops=(publisher,))
    app = service.build_app(router)
    app.state.policy = policy
    app.state.log = mirror
    app.state.keyring = settings.keyring()
    return app
