"""The refunds service's event store, its read model of requests, and the payout ledger."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    MetaData,
    String,
    Table,
    Uuid,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.refunds.domain import Approvable, Credit, Refund
from casetrail.runtime.eventstore import ServiceApplication, Statement
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
    Column("case_type", String(40)),
)
requests = Table(
    "refund_requests",
    tables,
    Column("refund_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False, index=True),
    Column("kind", String(40), nullable=False),
    Column("status", String(40), nullable=False),
    Column("awaiting", ARRAY(String(40)), nullable=False),
    Column("amount_minor", BigInteger),
    Column("currency", String(3)),
    Column("requested_by", String(200), nullable=False),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("claimed_until", DateTime(timezone=True)),
    Index("refund_requests_ready", "refund_id", postgresql_where=text("status = 'ready'")),
)
# What left the company: one row per payout, written in the transaction that records it.
payouts = Table(
    "refund_payouts",
    tables,
    Column("payout_id", Uuid, primary_key=True),
    Column("refund_id", Uuid, nullable=False, unique=True),
    Column("case_id", Uuid, nullable=False),
    Column("kind", String(40), nullable=False),
    Column("amount_minor", BigInteger),
    Column("currency", String(3)),
    Column("package", String(200)),
    Column("paid_at", DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class KnownCase:
    case_id: UUID
    opened_event_id: UUID
    correlation_id: UUID
    channel: str
    case_type: str


# Until triage's classification arrives, a case's type follows from its channel.
TYPE_BY_CHANNEL = {
    "executive": "Executive",
    "regulatory": "Regulatory",
    "legal": "Legal",
    "nod": "NOD",
}


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
        row.case_type or TYPE_BY_CHANNEL.get(row.channel, "General"),
    )


def request_row(request: Approvable, now: datetime) -> Statement:
    amount = request.amount or {}
    return (
        "INSERT INTO refund_requests (refund_id, case_id, kind, status, awaiting, amount_minor,"
        " currency, requested_by, requested_at, updated_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (refund_id) DO UPDATE SET status = EXCLUDED.status,"
        " awaiting = EXCLUDED.awaiting, updated_at = EXCLUDED.updated_at",
        (
            request.id,
            request.case_id,
            getattr(request, "kind", "refund"),
            request.status,
            list(request.awaiting),
            amount.get("amount_minor"),
            amount.get("currency"),
            request.requested_by,
            request.requested_at,
            now,
        ),
    )


def payout_recorded(request: Approvable, now: datetime) -> Statement:
    amount = request.amount or {}
    return (
        "INSERT INTO refund_payouts (payout_id, refund_id, case_id, kind, amount_minor, currency,"
        " package, paid_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
        (
            request.payout_id,
            request.id,
            request.case_id,
            getattr(request, "kind", "refund"),
            amount.get("amount_minor"),
            amount.get("currency"),
            getattr(request, "package", None),
            now,
        ),
    )


def payout_id_for(refund_id: UUID) -> UUID:
    """One payout per request, whoever pays it and however often: the gateway's key."""
    return uuid5(refund_id, "payout")


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class ChangedConcurrently(DomainError):
    status_code = 409
    code = "changed_concurrently"


class RefundsApplication(ServiceApplication):
    name = "refunds"

    def request(self, refund_id: UUID) -> Refund | Credit | None:
        try:
            return self.repository.get(refund_id)
        except AggregateNotFoundError:
            return None

    def existing(self, refund_id: UUID) -> Refund | Credit:
        found = self.request(refund_id)
        if found is None:
            raise NotFound("no such refund or credit", refund_id=str(refund_id))
        return found

    def open_request(self, request: Refund | Credit, now: datetime) -> tuple[Refund | Credit, bool]:
        """Saves a new request once per id; a retry with the same body gets the first back."""
        try:
            self.save_tracked(request, statements=[request_row(request, now)])
        except IntegrityError:
            existing = self.request(request.id)
            if existing is None or existing.request_fingerprint != request.request_fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request"
                ) from None
            return existing, False
        return request, True

    def change(
        self, refund_id: UUID, command: Callable[[Refund | Credit], None], now: datetime
    ) -> Refund | Credit:
        """Applies a command to the newest version; a concurrent change makes it look again."""
        for _ in range(3):
            request = self.existing(refund_id)
            command(request)
            try:
                self.save_tracked(request, statements=[request_row(request, now)])
            except IntegrityError:
                continue
            return request
        raise ChangedConcurrently("the request changed while this was being decided; retry")

    def rebuild_request_list(
        self, progress: Callable[[int, int], None] = lambda done, total: None
    ) -> int:
        """Rebuilds `refund_requests` from the event store alone (the payout ledger is not a
        read model: it stays as it is)."""

        def rows(request: Approvable) -> list[Statement]:
            return [request_row(request, request.modified_on)]

        return self.rebuild_read_models(("refund_requests",), rows, progress)

    def pay_out(self, refund_id: UUID, now: datetime) -> bool:
        """Issues a refund or grants a credit that is ready, exactly once.

        The event and the ledger row commit together; a second payer loses on the
        aggregate's next version (or the ledger's unique refund id) and pays nothing.
        """
        request = self.request(refund_id)
        if request is None or not request.ready_to_pay:
            return False
        payout_id = payout_id_for(refund_id)
        if isinstance(request, Refund):
            request.issue(payout_id, now)
        else:
            request.grant(payout_id, now)
        try:
            self.save_tracked(
                request, statements=[payout_recorded(request, now), request_row(request, now)]
            )
        except IntegrityError:
            return False
        return True
