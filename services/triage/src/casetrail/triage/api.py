"""Triage's HTTP API: classification, assignment, the case lifecycle and the roster."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool
from pydantic import AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import select

from casetrail.contracts.events import CaseType, Channel, Severity
from casetrail.runtime.models import StrictRequest
from casetrail.runtime.service import (
    DomainError,
    NotFound,
    application_of,
    components_of,
    service_of,
)
from casetrail.triage import casework
from casetrail.triage.assignment import (
    Agent,
    AssignmentDecision,
    AssignmentKind,
    EndOfShiftItem,
    Requirement,
    end_of_shift_report,
)
from casetrail.triage.domain import CaseTriage
from casetrail.triage.lifecycle import Status, WorklogEntry
from casetrail.triage.policy import TriagePolicy
from casetrail.triage.store import TriageApplication, case_list, qa_reviews

router = APIRouter(prefix="/v1", tags=["triage"])


def policy_of(request: Request) -> TriagePolicy:
    return request.app.state.policy  # type: ignore[no-any-return]


def who(request: Request) -> str:
    return str(request.state.principal.subject)


async def work_on(request: Request, case_id: UUID, command: Any) -> CaseTriage:
    service_of(request).require_ready()
    app = application_of(request, TriageApplication)
    return await run_in_threadpool(app.work_on, case_id, command)


class TriageView(BaseModel):
    case_id: UUID
    severity: Severity
    case_type: CaseType
    kind: str
    high_priority: bool
    tier: int
    channel: Channel
    status: str | None
    assignee: str | None
    partner: str | None
    assignment_kind: str | None
    next_action: str | None
    csat_score: int | None
    rules_fired: list[str]
    policy_version: str


def view_of(record: CaseTriage) -> TriageView:
    return TriageView(
        case_id=record.id,
        severity=Severity(record.severity),
        case_type=CaseType(record.case_type),
        kind=record.kind,
        high_priority=record.high_priority,
        tier=record.tier,
        channel=Channel(record.channel),
        status=record.status,
        assignee=record.assignee,
        partner=record.partner,
        assignment_kind=record.assignment_kind,
        next_action=record.next_action,
        csat_score=record.csat_score,
        rules_fired=record.rules_fired,
        policy_version=record.policy_version,
    )


@router.get("/cases/{case_id}/triage", response_model=TriageView)
async def read_triage(case_id: UUID, request: Request) -> Any:
    app = application_of(request, TriageApplication)
    record = await run_in_threadpool(app.triage_of, case_id)
    if record is None:
        raise NotFound("this case has not been triaged", case_id=str(case_id))
    return view_of(record)


class StatusChange(StrictRequest):
    status: Status
    reason: str | None = Field(None, max_length=2000)
    customer_confirmed: bool = Field(
        False, description="the customer explicitly confirmed the resolution (needed to close)"
    )


@router.post(
    "/cases/{case_id}/status",
    response_model=TriageView,
    responses={409: {"description": "not allowed from the current status; allowed ones named"}},
)
async def change_status(case_id: UUID, body: StatusChange, request: Request) -> Any:
    policy, by, now = policy_of(request), who(request), datetime.now(UTC)
    case = await work_on(
        request,
        case_id,
        lambda c: casework.change_status(
            c,
            body.status,
            policy,
            changed_by=by,
            reason=body.reason,
            customer_confirmed=body.customer_confirmed,
            now=now,
        ),
    )
    return view_of(case)


class Reassignment(StrictRequest):
    agent_id: str = Field(min_length=1, max_length=200)
    partner_id: str | None = Field(None, min_length=1, max_length=200)
    assignment_kind: AssignmentKind = AssignmentKind.TASK
    reason: str = Field(min_length=1, max_length=2000)


class UnknownAgent(DomainError):
    status_code = 422
    code = "unknown_agent"


@router.post("/cases/{case_id}/assignment", response_model=TriageView)
async def reassign(case_id: UUID, body: Reassignment, request: Request) -> Any:
    """A supervisor hands the case to someone else, with a reason."""
    app = application_of(request, TriageApplication)
    roster = {a.agent_id: a for a in await run_in_threadpool(app.roster)}
    unknown = [a for a in (body.agent_id, body.partner_id) if a and a not in roster]
    if unknown:
        raise UnknownAgent("these agents are not on the roster", agents=unknown)
    by, now = who(request), datetime.now(UTC)

    def command(case: CaseTriage) -> None:
        decision = AssignmentDecision(
            primary=body.agent_id,
            partner=body.partner_id,
            team=roster[body.agent_id].team,
            kind=body.assignment_kind,
            requirement=Requirement(tier=case.tier),
            rules_fired=(casework.MANUAL_REASSIGNMENT,),
        )
        casework.assign(case, decision, assigned_by=by, reason=body.reason, now=now)

    return view_of(await work_on(request, case_id, command))


class Escalation(StrictRequest):
    to_tier: Literal[2, 3]
    reason: str = Field(min_length=1, max_length=2000)


@router.post("/cases/{case_id}/escalation", response_model=TriageView)
async def escalate(case_id: UUID, body: Escalation, request: Request) -> Any:
    by, now = who(request), datetime.now(UTC)
    case = await work_on(
        request,
        case_id,
        lambda c: casework.escalate(
            c,
            policy_of(request),
            to_tier=body.to_tier,
            reason=body.reason,
            escalated_by=by,
            rule_id=casework.MANUAL_ESCALATION,
            now=now,
        ),
    )
    return view_of(case)


class Reclassification(StrictRequest):
    severity: Severity | None = None
    case_type: CaseType | None = None
    reason: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _changes_something(self) -> Reclassification:
        if self.severity is None and self.case_type is None:
            raise ValueError("name a new severity, a new case type, or both")
        return self


@router.put("/cases/{case_id}/classification", response_model=TriageView)
async def reclassify(case_id: UUID, body: Reclassification, request: Request) -> Any:
    """Corrects the case's severity or type; its SLA clocks are recomputed from the change."""
    by, now = who(request), datetime.now(UTC)
    case = await work_on(
        request,
        case_id,
        lambda c: casework.reclassify(
            c,
            severity=body.severity,
            case_type=body.case_type,
            policy=policy_of(request),
            reason=body.reason,
            reclassified_by=by,
            now=now,
        ),
    )
    return view_of(case)


class WorklogRequest(StrictRequest):
    at: AwareDatetime | None = Field(None, description="when it happened; default now")
    issue_type: str = Field(min_length=1, max_length=200)
    action: str = Field(min_length=1, max_length=2000)
    outcome: str = Field(min_length=1, max_length=2000)
    next_action: str | None = Field(None, min_length=1, max_length=500)


@router.post("/cases/{case_id}/worklog", response_model=TriageView, status_code=201)
async def add_worklog(case_id: UUID, body: WorklogRequest, request: Request) -> Any:
    entry = WorklogEntry(
        at=body.at or datetime.now(UTC),
        issue_type=body.issue_type,
        action=body.action,
        outcome=body.outcome,
        author=who(request),
        next_action=body.next_action,
    )
    entry_id = uuid4()
    return view_of(await work_on(request, case_id, lambda c: casework.log_work(c, entry, entry_id)))


class NextAction(StrictRequest):
    next_action: str = Field(min_length=1, max_length=500)


@router.put("/cases/{case_id}/next-action", response_model=TriageView)
async def put_next_action(case_id: UUID, body: NextAction, request: Request) -> Any:
    by, now = who(request), datetime.now(UTC)
    return view_of(
        await work_on(
            request,
            case_id,
            lambda c: casework.set_next_action(c, body.next_action, set_by=by, now=now),
        )
    )


class SatisfactionAnswer(StrictRequest):
    score: int
    feedback: str | None = Field(None, max_length=5000)


@router.post("/cases/{case_id}/satisfaction", response_model=TriageView)
async def answer_survey(case_id: UUID, body: SatisfactionAnswer, request: Request) -> Any:
    policy, now = policy_of(request), datetime.now(UTC)
    return view_of(
        await work_on(
            request,
            case_id,
            lambda c: casework.record_csat(
                c, policy, score=body.score, feedback=body.feedback, now=now
            ),
        )
    )


class CaseSummary(BaseModel):
    case_id: UUID
    status: str | None
    severity: str
    case_type: str
    kind: str
    tier: int
    high_priority: bool
    channel: str
    assignee: str | None
    partner: str | None
    assignment_kind: str | None
    next_action: str | None
    opened_at: datetime
    updated_at: datetime


async def _list(request: Request, *conditions: Any, limit: int) -> list[CaseSummary]:
    query = (
        select(case_list)
        .where(*conditions)
        .order_by(case_list.c.high_priority.desc(), case_list.c.opened_at)
    )
    async with components_of(request).engine.connect() as conn:
        rows = await conn.execute(query.limit(limit))
        return [CaseSummary.model_validate(dict(row._mapping)) for row in rows]


@router.get("/cases", response_model=list[CaseSummary])
async def list_cases(
    request: Request,
    status: Status | None = None,
    high_priority: bool | None = None,
    case_type: CaseType | None = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    assignee: str | None = None,
    next_action: Annotated[str | None, Query(description="text the next action contains")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Any:
    """The case list, filtered; high-priority cases first, then oldest first."""
    conditions = [
        column == value
        for column, value in (
            (case_list.c.status, status.value if status else None),
            (case_list.c.high_priority, high_priority),
            (case_list.c.case_type, case_type.value if case_type else None),
            (case_list.c.tier, tier),
            (case_list.c.assignee, assignee),
        )
        if value is not None
    ]
    if next_action:
        conditions.append(case_list.c.next_action.contains(next_action, autoescape=True))
    return await _list(request, *conditions, limit=limit)


@router.get("/my/cases", response_model=list[CaseSummary])
async def my_cases(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    return await _list(request, case_list.c.assignee == who(request), limit=limit)


@router.get("/my/dual-cases", response_model=list[CaseSummary])
async def my_dual_cases(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """Dual cases where I am the partner who enters classification and resolution."""
    return await _list(
        request,
        case_list.c.partner == who(request),
        case_list.c.assignment_kind == AssignmentKind.DUAL.value,
        limit=limit,
    )


@router.put("/agents/{agent_id}", response_model=Agent)
async def put_agent(agent_id: str, body: Agent, request: Request) -> Any:
    """Adds an agent to the roster or changes their skills, tiers, shift or capacity."""
    if body.agent_id != agent_id:
        raise UnknownAgent("the body names another agent", agent_id=body.agent_id)
    app = application_of(request, TriageApplication)
    await run_in_threadpool(app.put_agent, body, datetime.now(UTC))
    return body


@router.get("/agents", response_model=list[Agent])
async def list_agents(request: Request) -> Any:
    return await run_in_threadpool(application_of(request, TriageApplication).roster)


# Each day in the window is walked shift by shift; a bound keeps one request cheap.
LONGEST_REPORT = timedelta(days=31)


class InvalidWindow(DomainError):
    status_code = 422
    code = "invalid_window"


@router.get("/reports/end-of-shift", response_model=list[EndOfShiftItem])
async def end_of_shift(
    request: Request,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
) -> Any:
    """Cases still in Assigned for agents whose shift ended in (since, until]."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=1)
    if not timedelta(0) <= until - since <= LONGEST_REPORT:
        raise InvalidWindow(
            f"since must come before until, at most {LONGEST_REPORT.days} days apart",
            since=since.isoformat(),
            until=until.isoformat(),
        )
    app = application_of(request, TriageApplication)
    roster, waiting = await run_in_threadpool(lambda: (app.roster(), app.cases_in_assigned()))
    return end_of_shift_report(roster, waiting, since, until)


@router.get("/policy", tags=["policy"])
async def read_policy(request: Request) -> dict[str, Any]:
    return request.app.state.policy.model_dump(mode="json")


class QaScorecardRequest(StrictRequest):
    accuracy: int = Field(ge=1, le=5)
    policy_compliance: int = Field(ge=1, le=5)
    tone: int = Field(ge=1, le=5)
    closure_quality: int = Field(ge=1, le=5)
    notes: str | None = Field(None, max_length=5000)


@router.post("/cases/{case_id}/qa-scorecard", response_model=TriageView, status_code=201)
async def score_for_qa(case_id: UUID, body: QaScorecardRequest, request: Request) -> Any:
    """A QA reviewer's scorecard for a sampled case (section 7)."""
    scorecard = casework.QaScorecard(
        body.accuracy, body.policy_compliance, body.tone, body.closure_quality, body.notes
    )
    by, now, scorecard_id = who(request), datetime.now(UTC), uuid4()
    return view_of(
        await work_on(
            request,
            case_id,
            lambda c: casework.score_qa(
                c, scorecard, reviewer=by, scorecard_id=scorecard_id, now=now
            ),
        )
    )


class QaQueueItem(CaseSummary):
    qa_reason: str
    sampled_at: datetime


@router.get("/qa/queue", response_model=list[QaQueueItem])
async def qa_queue(request: Request, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Any:
    """Sampled cases still waiting for a scorecard, oldest sample first."""
    query = (
        select(case_list, qa_reviews.c.reason.label("qa_reason"), qa_reviews.c.sampled_at)
        .join(qa_reviews, qa_reviews.c.case_id == case_list.c.case_id)
        .where(qa_reviews.c.scorecards == 0)
        .order_by(qa_reviews.c.sampled_at)
        .limit(limit)
    )
    async with components_of(request).engine.connect() as conn:
        return [QaQueueItem.model_validate(dict(row._mapping)) for row in await conn.execute(query)]
