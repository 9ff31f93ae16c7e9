"""Triage's HTTP API: how a case was classified, and the policy in force."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel

from casetrail.contracts.events import CaseType, Channel, Severity
from casetrail.runtime.service import NotFound, application_of
from casetrail.triage.store import TriageApplication

router = APIRouter(prefix="/v1", tags=["triage"])


class TriageView(BaseModel):
    case_id: UUID
    severity: Severity
    case_type: CaseType
    high_priority: bool
    tier: int
    channel: Channel
    rules_fired: list[str]
    policy_version: str


@router.get("/cases/{case_id}/triage", response_model=TriageView)
async def read_triage(case_id: UUID, request: Request) -> Any:
    app = application_of(request, TriageApplication)
    record = await run_in_threadpool(app.triage_of, case_id)
    if record is None:
        raise NotFound("this case has not been triaged", case_id=str(case_id))
    return TriageView(
        case_id=case_id,
        severity=Severity(record.severity),
        case_type=CaseType(record.case_type),
        high_priority=record.high_priority,
        tier=record.tier,
        channel=Channel(record.channel),
        rules_fired=record.rules_fired,
        policy_version=record.policy_version,
    )


@router.get("/policy", tags=["policy"])
async def read_policy(request: Request) -> dict[str, Any]:
    return request.app.state.policy.model_dump(mode="json")
