"""The SLA timer's HTTP API: a case's clocks, its contact attempts, the daily dashboard."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import BaseModel, Field
from sqlalchemy import Integer, and_, case, func, select

from casetrail.contracts.events import ClockKind
from casetrail.runtime.models import StrictRequest
from casetrail.runtime.service import DomainError, NotFound, application_of, components_of
from casetrail.sla_timer.domain import CaseClocks
from casetrail.sla_timer.policy import SlaPolicy
from casetrail.sla_timer.store import SlaApplication, clocks

router = APIRouter(prefix="/v1", tags=["clocks"])


class ClockView(BaseModel):
    clock_id: UUID
    clock: ClockKind
    rule_id: str
    state: str
    started_at: datetime
    deadline: datetime
    measure: str
    calendar: str
    time_left_seconds: int = Field(
        description="business time left for a business clock, wall time otherwise; 0 once due"
    )
    settled_at: datetime | None
    on_time: bool | None


class CaseClocksView(BaseModel):
    case_id: UUID
    headline_deadline: datetime | None = Field(
        description="the tightest deadline among the clocks still running"
    )
    contact_attempts: int
    contact_attempts_exhausted: bool
    clocks: list[ClockView]


def _clocks_view(case: CaseClocks, request: Request) -> CaseClocksView:
    calendars = request.app.state.calendars
    now = request.app.state.now()
    views = []
    for clock in case.clocks.values():
        calendar = calendars[clock.calendar]
        left = (
            calendar.business_time_between(now, clock.deadline)
            if clock.measure == "business"
            else clock.deadline - now
        )
        views.append(
            ClockView(
                clock_id=clock.clock_id,
                clock=clock.clock,
                rule_id=clock.rule_id,
                state=clock.state,
                started_at=clock.started_at,
                deadline=clock.deadline,
                measure=clock.measure,
                calendar=clock.calendar,
                time_left_seconds=int(max(left, timedelta(0)).total_seconds()),
                settled_at=clock.settled_at,
                on_time=clock.on_time,
            )
        )
    running = [view.deadline for view in views if view.state == "running"]
    return CaseClocksView(
        case_id=case.case_id,
        headline_deadline=min(running, default=None),
        contact_attempts=len(case.attempts),
        contact_attempts_exhausted=case.contact_attempts_exhausted,
        clocks=sorted(views, key=lambda view: (view.deadline, view.rule_id)),
    )


@router.get("/cases/{case_id}/clocks", response_model=CaseClocksView)
async def read_clocks(case_id: UUID, request: Request) -> Any:
    app = application_of(request, SlaApplication)
    case = await run_in_threadpool(app.case_clocks, case_id)
    if case is None or not case.clocks:
        raise NotFound("no clocks for this case", case_id=str(case_id))
    return _clocks_view(case, request)


class ContactAttempt(StrictRequest):
    channels: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        min_length=1, description="every channel this attempt used, e.g. email and phone"
    )
    reached: bool
    note: str | None = Field(None, max_length=2000)


def known_market(case: CaseClocks, policy: SlaPolicy) -> str | None:
    market = case.facts.get("market")
    return market if market in policy.markets else None


@router.post(
    "/cases/{case_id}/contact-attempts",
    status_code=201,
    response_model=CaseClocksView,
    responses={409: {"description": "same day, channels missing, or attempts used up"}},
)
async def record_contact_attempt(case_id: UUID, body: ContactAttempt, request: Request) -> Any:
    """One initial-contact attempt; the third without reaching the customer flags the case."""
    app = application_of(request, SlaApplication)
    policy = request.app.state.policy
    calendars = request.app.state.calendars
    now = request.app.state.now()

    def attempt(case: CaseClocks) -> None:
        case.attempt_contact(
            channels=body.channels,
            reached=body.reached,
            note=body.note,
            attempted_by=request.state.principal.subject,
            now=now,
            policy=policy,
            calendar=calendars[policy.market_calendar(known_market(case, policy))],
        )

    case = await run_in_threadpool(app.change, case_id, attempt, policy, calendars)
    if case is None:
        raise NotFound(
            "no such case (yet): clocks start when a case is opened", case_id=str(case_id)
        )
    return _clocks_view(case, request)


Dimension = Literal["case_type", "channel", "severity", "tier", "clock"]


class Attainment(BaseModel):
    group: str | None
    due: int = Field(description="clocks whose deadline fell in the period")
    met_on_time: int
    breached: int
    still_running: int
    attainment: float | None = Field(description="met on time / settled; None if none settled")


class Dashboard(BaseModel):
    since: date
    until: date
    by: dict[str, list[Attainment]]


class InvalidPeriod(DomainError):
    status_code = 422
    code = "invalid_period"


MAX_DASHBOARD_DAYS = 92


@router.get("/sla/dashboard", response_model=Dashboard)
async def dashboard(
    request: Request,
    day: Annotated[date | None, Query(description="one day (UTC); default today")] = None,
    since: date | None = None,
    until: date | None = None,
) -> Any:
    """SLA attainment of the clocks due in a day or range, by case type, channel,
    severity, tier and clock."""
    first = day or since or request.app.state.now().date()
    last = day or until or first
    if last < first or (last - first).days >= MAX_DASHBOARD_DAYS:
        raise InvalidPeriod(
            f"a period runs forwards, {MAX_DASHBOARD_DAYS} days at most",
            since=first.isoformat(),
            until=last.isoformat(),
        )
    start = datetime.combine(first, time(0), UTC)
    end = datetime.combine(last + timedelta(days=1), time(0), UTC)
    due = and_(clocks.c.deadline >= start, clocks.c.deadline < end, clocks.c.state != "withdrawn")
    met = func.sum(case((clocks.c.on_time.is_(True), 1), else_=0)).cast(Integer)
    breached = func.sum(case((clocks.c.on_time.is_(False), 1), else_=0)).cast(Integer)
    running = func.sum(case((clocks.c.state.in_(["running", "paused"]), 1), else_=0)).cast(Integer)
    by: dict[str, list[Attainment]] = {}
    async with components_of(request).engine.connect() as conn:
        for dimension in ("case_type", "channel", "severity", "tier", "clock"):
            column = clocks.c[dimension]
            rows = await conn.execute(
                select(column, func.count(), met, breached, running)
                .where(due)
                .group_by(column)
                .order_by(column)
            )
            by[dimension] = [
                Attainment(
                    group=None if group is None else str(group),
                    due=count,
                    met_on_time=met_count,
                    breached=breached_count,
                    still_running=running_count,
                    attainment=(
                        round(met_count / (met_count + breached_count), 4)
                        if met_count + breached_count
                        else None
                    ),
                )
                for group, count, met_count, breached_count, running_count in rows
            ]
    return Dashboard(since=first, until=last, by=by)
