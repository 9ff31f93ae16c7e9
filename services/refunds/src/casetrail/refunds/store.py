"""The refunds service's event store (refunds) and the cases it knows of."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Column, DateTime, MetaData, String, Table, Uuid, select
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.refunds.domain import Refund, RefundFacts, decide_refund
from casetrail.refunds.policy import RefundPolicy
from casetrail.runtime.eventstore import ServiceApplication
from casetrail.runtime.service import DomainError, NotFound

tables = MetaData()
known_cases = Table(
    "known_cases",
    tables,
    Column("case_id", Uuid, primary_key=True),
    Column("opened_event_id", Uuid, nullable=False),
    Column("correlation_id", Uuid, nullable=False),
    Column("channel", String(40), nullable=False),
    Column("opened_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class KnownCase:
    case_id: UUID
    opened_event_id: UUID
    correlation_id: UUID
    channel: str


async def known_case(conn: AsyncConnection, case_id: UUID) -> KnownCase | None:
    row = (await conn.execute(select(known_cases).where(known_cases.c.case_id == case_id))).first()
    if row is None:
        return None
    # asyncpg hands back its own UUID type; the event store wants the standard one.
    return KnownCase(
        UUID(str(row.case_id)),
        UUID(str(row.opened_event_id)),
        UUID(str(row.correlation_id)),
        row.channel,
    )


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class RefundsApplication(ServiceApplication):
    name = "refunds"

    def refund(self, refund_id: UUID) -> Refund | None:
        try:
            return self.repository.get(refund_id)
        except AggregateNotFoundError:
            return None

    def request_refund(
        self,
        *,
        refund_id: UUID,
        case: KnownCase,
        facts: RefundFacts,
        requested_by: str,
        request_fingerprint: str,
        policy: RefundPolicy,
        now: datetime,
    ) -> tuple[Refund, bool]:
        """Records the request and the policy's decision together, once per refund id."""
        decision = decide_refund(facts, policy)
        refund = Refund(
            case_id=case.case_id,
            refund_id=refund_id,
            amount={"amount_minor": facts.amount_minor, "currency": facts.currency},
            reason=facts.reason.value,
            usage=facts.usage.model_dump(),
            cancellation_evidence=facts.cancellation_evidence,
            issue_resolved=facts.issue_resolved,
            goodwill_declined=facts.goodwill_declined,
            threat=facts.threat,
            charged_at=facts.charged_at,
            requested_by=requested_by,
            requested_at=facts.requested_at,
            request_fingerprint=request_fingerprint,
            correlation_id=case.correlation_id,
            causation_id=case.opened_event_id,
        )
        refund.record_decision(decision, policy.version, now)
        try:
            self.save(refund)
        except IntegrityError:
            existing = self.refund(refund_id)
            if existing is None or existing.request_fingerprint != request_fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different refund request"
                ) from None
            return existing, False
        return refund, True

    def review_refund(
        self,
        refund_id: UUID,
        *,
        approve: bool,
        reviewer: str,
        roles: set[str],
        reason: str,
        now: datetime,
    ) -> Refund:
        for _ in range(3):
            refund = self.refund(refund_id)
            if refund is None:
                raise NotFound("no such refund", refund_id=str(refund_id))
            refund.review(approve=approve, reviewer=reviewer, roles=roles, reason=reason, now=now)
            try:
                self.save(refund)
            except IntegrityError:
                continue  # reviewed concurrently: look again, and refuse if it is settled
            return refund
        raise DomainError("the refund changed while it was being reviewed; retry")
