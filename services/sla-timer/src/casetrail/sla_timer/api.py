"""The SLA timer's HTTP API: a case's clocks and their deadlines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel
from sqlalchemy import select

from casetrail.contracts.events import ClockKind
from casetrail.runtime.service import NotFound, application_of, components_of
from casetrail.sla_timer.store import SlaApplication, timers

router = APIRouter(prefix="/v1", tags=["clocks"])


class ClockView(BaseModel):
    clock_id: UUID
    clock: ClockKind
    state: str
    started_at: datetime
    deadline: datetime
    basis: str
    rule_id: str
    calendar: str
    policy_version: str
    business_time_left_seconds: int


@router.get("/cases/{case_id}/clocks", response_model=list[ClockView])
async def read_clocks(case_id: UUID, request: Request) -> Any:
    components = components_of(request)
    app = application_of(request, SlaApplication)
    async with components.engine.connect() as conn:
        clock_ids = (
            (await conn.execute(select(timers.c.clock_id).where(timers.c.case_id == case_id)))
            .scalars()
            .all()
        )
    if not clock_ids:
        raise NotFound("no clocks for this case", case_id=str(case_id))
    calendar = request.app.state.calendar
    now = datetime.now(UTC)
    views = []
    for clock_id in clock_ids:
        clock = await run_in_threadpool(app.clock, clock_id)
        if clock is None:
            continue
        left = (
            calendar.business_time_between(now, clock.deadline)
            if clock.basis == "business"
            else clock.deadline - now
        )
        views.append(
            ClockView(
                clock_id=clock.id,
                clock=ClockKind(clock.clock),
                state=clock.state,
                started_at=clock.started_at,
                deadline=clock.deadline,
                basis=clock.basis,
                rule_id=clock.rule_id,
                calendar=clock.calendar,
                policy_version=clock.policy_version,
                business_time_left_seconds=int(max(left, timedelta(0)).total_seconds()),
            )
        )
    return sorted(views, key=lambda view: view.clock.value)
