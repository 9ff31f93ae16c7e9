"""Intake's HTTP API: channel adapters open cases here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from casetrail.contracts.envelope import fingerprint
from casetrail.contracts.events import AttachmentRef, Channel
from casetrail.intake.domain import case_id_for_idempotency_key
from casetrail.intake.store import IntakeApplication
from casetrail.runtime.service import NotFound, application_of, service_of

router = APIRouter(prefix="/v1", tags=["cases"])


class OpenCaseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: Channel
    customer_ref: str = Field(min_length=1, max_length=200, description="account id or e-mail")
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field(min_length=1, max_length=20_000)
    transaction_id: str | None = Field(None, max_length=200)
    transaction_time: AwareDatetime | None = Field(None, description="ISO 8601 with offset")
    attachments: list[AttachmentRef] = Field(default_factory=list, max_length=50)


class CaseAccepted(BaseModel):
    case_id: UUID
    status: str
    history_url: str


class IntakeCaseView(BaseModel):
    case_id: UUID
    channel: Channel
    customer_ref: str
    subject: str
    opened_at: datetime
    attachments: list[AttachmentRef]


@router.post(
    "/cases",
    status_code=202,
    response_model=CaseAccepted,
    responses={
        409: {"description": "Idempotency-Key reused with a different body"},
        503: {"description": "PostgreSQL or Kafka unreachable: retry after Retry-After"},
    },
)
async def open_case(
    body: OpenCaseRequest,
    request: Request,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Any:
    """Records `CaseOpened` durably and answers 202; publication to Kafka follows.

    While PostgreSQL or Kafka is unreachable it answers 503 with Retry-After and records
    nothing: the channel keeps the complaint and retries with the same Idempotency-Key.
    """
    service_of(request).require_ready()
    store = application_of(request, IntakeApplication)
    case_id = case_id_for_idempotency_key(idempotency_key) if idempotency_key else uuid4()
    case, created = await run_in_threadpool(
        store.open_case,
        case_id,
        body.model_dump(),
        fingerprint(body.model_dump(mode="json")),
        datetime.now(UTC),
    )
    return JSONResponse(
        {
            "case_id": str(case.id),
            "status": "accepted" if created else "already_accepted",
            "history_url": f"/v1/cases/{case.id}/history",
        },
        status_code=202,
    )


@router.get("/cases/{case_id}", response_model=IntakeCaseView)
async def read_case(case_id: UUID, request: Request) -> Any:
    case = await run_in_threadpool(application_of(request, IntakeApplication).case, case_id)
    if case is None:
        raise NotFound("no such case", case_id=str(case_id))
    return IntakeCaseView(
        case_id=case.id,
        channel=Channel(case.channel),
        customer_ref=case.customer_ref,
        subject=case.subject,
        opened_at=case.opened_at,
        attachments=[AttachmentRef.model_validate(a) for a in case.attachments],
    )
