"""The refunds HTTP API: agents request refunds and credits; approvers settle them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from fastapi import APIRouter, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, AwareDatetime, BaseModel, Field, model_validator
from sqlalchemy import select

from casetrail.contracts.envelope import fingerprint
from casetrail.contracts.events import Approver, CaseType, Money, RefundReason, UsageFacts
from casetrail.refunds.decision import (
    CreditFacts,
    EvidenceKind,
    RefundFacts,
    RefundPolicyError,
    decide_credit,
    decide_package_restoration,
    decide_refund,
)
from casetrail.refunds.domain import Credit, Refund
from casetrail.refunds.policy import RefundPolicy
from casetrail.refunds.store import KnownCase, RefundsApplication, known_case, requests
from casetrail.runtime.models import StrictRequest
from casetrail.runtime.service import DomainError, NotFound, application_of, components_of

router = APIRouter(prefix="/v1", tags=["refunds"])


class RefundPolicyRefused(DomainError):
    status_code = 422
    code = "refund_policy_refused"


@contextmanager
def policy_refusals() -> Iterator[None]:
    """Turns a request the policy cannot decide as given into a 422 that says why."""
    try:
        yield
    except RefundPolicyError as error:
        raise RefundPolicyRefused(str(error)) from None


Reason = Annotated[str, Field(min_length=1, max_length=2000, description="why, for the record")]


# Far above any refund, far below what a PostgreSQL bigint holds.
LARGEST_AMOUNT_MINOR = 10**12


def _within_reason(amount: Money | None) -> Money | None:
    if amount is not None and amount.amount_minor > LARGEST_AMOUNT_MINOR:
        raise ValueError(f"an amount above {LARGEST_AMOUNT_MINOR} minor units is not a refund")
    return amount


Amount = Annotated[Money, AfterValidator(_within_reason)]


class RefundRequest(StrictRequest):
    amount: Amount
    reason: RefundReason
    usage: UsageFacts
    charged_at: AwareDatetime = Field(description="when the charge being refunded was taken")
    plan: str | None = Field(None, min_length=1, max_length=100)
    evidence: tuple[EvidenceKind, ...] = Field(
        (), description="evidence the customer asked to cancel and it did not take"
    )
    technical_fault: bool = False
    fault_resolved: bool = False
    goodwill_declined: bool = False
    threat: bool = Field(False, description="the complaint threatens legal or public action")


class CreditRequest(StrictRequest):
    kind: Annotated[str, Field(pattern="^(credit|package_restoration)$")] = "credit"
    amount: Amount | None = None
    package: str | None = Field(None, min_length=1, max_length=200)
    justification: str = Field(min_length=1, max_length=5000)
    threat: bool = False

    @model_validator(mode="after")
    def _what_is_given(self) -> CreditRequest:
        if self.kind == "credit" and self.amount is None:
            raise ValueError("a credit needs an amount")
        if self.kind == "package_restoration" and self.package is None:
            raise ValueError("a package restoration names the package")
        return self


class GoodwillAnswer(StrictRequest):
    accepted: bool


class Settlement(StrictRequest):
    reason: Reason


class RequestView(BaseModel):
    refund_id: UUID
    case_id: UUID
    kind: str
    status: str
    path: str | None = None
    amount: Money | None
    requested_by: str
    awaiting: list[Approver]
    reasons: list[str]
    payout_id: UUID | None


def _view(request: Refund | Credit) -> RequestView:
    return RequestView(
        refund_id=request.id,
        case_id=request.case_id,
        kind=getattr(request, "kind", "refund"),
        status=request.status,
        path=getattr(request, "path", None),
        amount=Money.model_validate(request.amount) if request.amount else None,
        requested_by=request.requested_by,
        awaiting=[Approver(a) for a in request.awaiting],
        reasons=list(request.reasons),
        payout_id=request.payout_id,
    )


async def _known_case(request: Request, case_id: UUID) -> KnownCase:
    async with components_of(request).engine.connect() as conn:
        case = await known_case(conn, case_id)
    if case is None:
        raise NotFound(
            "no such case (yet): refunds learns of cases from intake", case_id=str(case_id)
        )
    return case


def _request_id(case_id: UUID, kind: str, idempotency_key: str | None) -> UUID:
    if not idempotency_key:
        return uuid4()
    return uuid5(NAMESPACE_URL, f"casetrail:{kind}:{case_id}:{idempotency_key}")


IdempotencyKey = Annotated[str | None, Header(min_length=1, max_length=200)]


@router.post("/cases/{case_id}/refunds", status_code=202, response_model=RequestView)
async def request_refund(
    case_id: UUID, body: RefundRequest, request: Request, idempotency_key: IdempotencyKey = None
) -> Any:
    """Records the request, the downgrade (except on goodwill) and the policy's decision."""
    app = application_of(request, RefundsApplication)
    policy: RefundPolicy = request.app.state.policy
    case = await _known_case(request, case_id)
    now = datetime.now(UTC)
    facts = RefundFacts(
        reason=body.reason,
        usage=body.usage,
        cancellation_evidence=frozenset(body.evidence),
        technical_fault=body.technical_fault,
        fault_resolved=body.fault_resolved,
        goodwill_declined=body.goodwill_declined,
        plan=body.plan or "unknown",
        amount_minor=body.amount.amount_minor,
        currency=body.amount.currency,
        case_type=CaseType(case.case_type),
        threat=body.threat,
        charged_at=body.charged_at,
        requested_at=now,
    )
    with policy_refusals():
        decision = decide_refund(facts, policy)
    refund = Refund(
        case_id=case.case_id,
        refund_id=_request_id(case_id, "refunds", idempotency_key),
        amount=body.amount.model_dump(),
        reason=body.reason.value,
        usage=body.usage.model_dump(),
        cancellation_evidence=bool(body.evidence),
        evidence=[kind.value for kind in body.evidence],
        technical_fault=body.technical_fault,
        issue_resolved=body.fault_resolved,
        goodwill_declined=body.goodwill_declined,
        threat=body.threat,
        plan=body.plan,
        case_type=case.case_type,
        charged_at=body.charged_at,
        requested_by=request.state.principal.subject,
        requested_at=now,
        request_fingerprint=fingerprint(body.model_dump(mode="json")),
        correlation_id=case.correlation_id,
        causation_id=case.opened_event_id,
    )
    refund.decide(decision, policy.version, now)
    saved, _ = await run_in_threadpool(app.open_request, refund, now)
    return JSONResponse(_view(saved).model_dump(mode="json"), status_code=202)


@router.post("/cases/{case_id}/credits", status_code=202, response_model=RequestView)
async def request_credit(
    case_id: UUID, body: CreditRequest, request: Request, idempotency_key: IdempotencyKey = None
) -> Any:
    """A discretionary credit (agents up to their limit) or a grandfathered package back."""
    app = application_of(request, RefundsApplication)
    policy: RefundPolicy = request.app.state.policy
    case = await _known_case(request, case_id)
    if body.kind == "package_restoration":
        with policy_refusals():
            decision = decide_package_restoration(body.justification)
    else:
        assert body.amount is not None
        with policy_refusals():
            facts = CreditFacts(
                amount_minor=body.amount.amount_minor,
                currency=body.amount.currency,
                case_type=CaseType(case.case_type),
                justification=body.justification,
                threat=body.threat,
            )
            decision = decide_credit(facts, policy)
    now = datetime.now(UTC)
    credit = Credit(
        case_id=case.case_id,
        refund_id=_request_id(case_id, "credits", idempotency_key),
        kind=body.kind,
        amount=body.amount.model_dump() if body.amount else None,
        package=body.package,
        justification=body.justification,
        threat=body.threat,
        reasons=list(decision.reasons),
        approvals=[
            {"approver": need.approver.value, "rule_id": need.rule_id, "reason": need.reason}
            for need in decision.approvals
        ],
        requested_by=request.state.principal.subject,
        requested_at=now,
        request_fingerprint=fingerprint(body.model_dump(mode="json")),
        correlation_id=case.correlation_id,
        causation_id=case.opened_event_id,
    )
    credit.require(decision.approvals, now)
    saved, _ = await run_in_threadpool(app.open_request, credit, now)
    return JSONResponse(_view(saved).model_dump(mode="json"), status_code=202)


@router.get("/cases/{case_id}/refunds", response_model=list[RequestView])
async def case_refunds(case_id: UUID, request: Request) -> Any:
    """Every refund and credit asked for on the case, oldest first."""
    app = application_of(request, RefundsApplication)
    await _known_case(request, case_id)
    async with components_of(request).engine.connect() as conn:
        ids = (
            await conn.execute(
                select(requests.c.refund_id)
                .where(requests.c.case_id == case_id)
                .order_by(requests.c.requested_at)
            )
        ).scalars()
        refund_ids = [UUID(str(refund_id)) for refund_id in ids]
    return [_view(await run_in_threadpool(app.existing, refund_id)) for refund_id in refund_ids]


@router.get("/refunds/{refund_id}", response_model=RequestView)
async def read_refund(refund_id: UUID, request: Request) -> Any:
    app = application_of(request, RefundsApplication)
    return _view(await run_in_threadpool(app.existing, refund_id))


@router.post(
    "/refunds/{refund_id}/goodwill",
    response_model=RequestView,
    responses={409: {"description": "no goodwill offer is open"}},
)
async def answer_goodwill(refund_id: UUID, body: GoodwillAnswer, request: Request) -> Any:
    """The customer's answer to a goodwill offer; declining makes it a dissatisfaction
    refund, with the downgrade to Basic."""
    app = application_of(request, RefundsApplication)
    policy: RefundPolicy = request.app.state.policy
    agent = request.state.principal.subject
    now = datetime.now(UTC)

    def answer(refund: Refund | Credit) -> None:
        if not isinstance(refund, Refund):
            raise NotFound("no such refund", refund_id=str(refund_id))
        if body.accepted:
            refund.accept_goodwill(agent, now)
            return
        with policy_refusals():
            declined = decide_refund(refund.facts(goodwill_declined=True), policy)
        refund.decline_goodwill(agent, declined, policy.version, now)

    return _view(await run_in_threadpool(app.change, refund_id, answer, now))


@router.get("/approvals", response_model=list[RequestView])
async def pending_approvals(
    request: Request,
    approver: Annotated[Approver | None, Query(description="only those awaiting this role")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Any:
    """Requests waiting for an approval the caller's roles can give, oldest first."""
    app = application_of(request, RefundsApplication)
    roles = {role.value for role in request.state.principal.roles}
    wanted = [approver.value] if approver else [a.value for a in Approver if a.value in roles]
    async with components_of(request).engine.connect() as conn:
        ids = (
            await conn.execute(
                select(requests.c.refund_id)
                .where(
                    requests.c.status == "awaiting_approval",
                    requests.c.awaiting.overlap(wanted),
                )
                .order_by(requests.c.requested_at)
                .limit(limit)
            )
        ).scalars()
        refund_ids = [UUID(str(refund_id)) for refund_id in ids]
    return [_view(await run_in_threadpool(app.existing, refund_id)) for refund_id in refund_ids]


async def _settle(request: Request, refund_id: UUID, reason: str, *, approve: bool) -> Any:
    app = application_of(request, RefundsApplication)
    principal = request.state.principal
    roles = {role.value for role in principal.roles}
    now = datetime.now(UTC)

    def settle(refund: Refund | Credit) -> None:
        if approve:
            refund.approve(principal.subject, roles, reason, now)
        else:
            refund.reject(principal.subject, roles, reason, now)

    return _view(await run_in_threadpool(app.change, refund_id, settle, now))


SETTLING = {403: {"description": "not this approver"}, 409: {"description": "not waiting"}}


@router.post("/refunds/{refund_id}/approve", response_model=RequestView, responses=SETTLING)
async def approve(refund_id: UUID, body: Settlement, request: Request) -> Any:
    """One approval the request waits for, given by someone other than the requester."""
    return await _settle(request, refund_id, body.reason, approve=True)


@router.post("/refunds/{refund_id}/reject", response_model=RequestView, responses=SETTLING)
async def reject(refund_id: UUID, body: Settlement, request: Request) -> Any:
    """Ends the request: nothing is paid."""
    return await _settle(request, refund_id, body.reason, approve=False)
