"""The refunds HTTP API: agents request refunds on a case; the policy decides."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from fastapi import APIRouter, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from casetrail.contracts.envelope import fingerprint
from casetrail.contracts.events import Money, RefundOutcome, RefundReason, UsageFacts
from casetrail.refunds.domain import RefundFacts
from casetrail.refunds.store import RefundsApplication, known_case
from casetrail.runtime.service import NotFound, application_of, components_of

router = APIRouter(prefix="/v1", tags=["refunds"])


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount: Money
    reason: RefundReason
    usage: UsageFacts
    cancellation_evidence: bool = False
    issue_resolved: bool = False
    goodwill_declined: bool = False
    threat: bool = False
    charged_at: AwareDatetime | None = None


class ReviewRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool
    reason: str = Field(min_length=1, max_length=2000, description="why, for the record")


class RefundView(BaseModel):
    refund_id: UUID
    case_id: UUID
    amount: Money
    reason: RefundReason
    outcome: RefundOutcome
    reviewer_role: str | None
    reviewed_by: str | None
    requested_by: str
    rules_fired: list[str]


def _view(refund: Any) -> RefundView:
    return RefundView(
        refund_id=refund.id,
        case_id=refund.case_id,
        amount=Money.model_validate(refund.amount),
        reason=RefundReason(refund.reason),
        outcome=RefundOutcome(refund.outcome),
        reviewer_role=refund.reviewer_role,
        reviewed_by=refund.reviewed_by,
        requested_by=refund.requested_by,
        rules_fired=refund.rules_fired,
    )


@router.post("/cases/{case_id}/refunds", status_code=202, response_model=RefundView)
async def request_refund(
    case_id: UUID,
    body: RefundRequest,
    request: Request,
    idempotency_key: Annotated[str | None, Header(min_length=1, max_length=200)] = None,
) -> Any:
    """Records `RefundRequested` and the policy's `RefundDecided` together."""
    app = application_of(request, RefundsApplication)
    async with components_of(request).engine.connect() as conn:
        case = await known_case(conn, case_id)
    if case is None:
        raise NotFound(
            "no such case (yet): refunds learns of cases from intake", case_id=str(case_id)
        )
    refund_id = (
        uuid5(NAMESPACE_URL, f"casetrail:refunds:{case_id}:{idempotency_key}")
        if idempotency_key
        else uuid4()
    )
    now = datetime.now(UTC)
    facts = RefundFacts(
        amount_minor=body.amount.amount_minor,
        currency=body.amount.currency,
        reason=body.reason,
        usage=body.usage,
        cancellation_evidence=body.cancellation_evidence,
        issue_resolved=body.issue_resolved,
        goodwill_declined=body.goodwill_declined,
        threat=body.threat,
        charged_at=body.charged_at,
        requested_at=now,
        nod_case=case.channel == "nod",
    )
    refund, _ = await run_in_threadpool(
        lambda: app.request_refund(
            refund_id=refund_id,
            case=case,
            facts=facts,
            requested_by=request.state.principal.subject,
            request_fingerprint=fingerprint(body.model_dump(mode="json")),
            policy=request.app.state.policy,
            now=now,
        )
    )
    return JSONResponse(_view(refund).model_dump(mode="json"), status_code=202)


@router.get("/refunds/{refund_id}", response_model=RefundView)
async def read_refund(refund_id: UUID, request: Request) -> Any:
    app = application_of(request, RefundsApplication)
    refund = await run_in_threadpool(app.refund, refund_id)
    if refund is None:
        raise NotFound("no such refund", refund_id=str(refund_id))
    return _view(refund)


@router.post(
    "/refunds/{refund_id}/review",
    response_model=RefundView,
    responses={403: {"description": "wrong reviewer"}, 409: {"description": "not held"}},
)
async def review_refund(refund_id: UUID, body: ReviewRequest, request: Request) -> Any:
    """Approves or rejects a refund held for review, as the caller named in the token."""
    app = application_of(request, RefundsApplication)
    principal = request.state.principal
    refund = await run_in_threadpool(
        lambda: app.review_refund(
            refund_id,
            approve=body.approve,
            reviewer=principal.subject,
            roles={role.value for role in principal.roles},
            reason=body.reason,
            now=datetime.now(UTC),
        )
    )
    return _view(refund)
