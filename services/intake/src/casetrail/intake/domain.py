"""Intake's record of a case: opened once, from one complaint, whatever channel it used."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid5

from eventsourcing.domain import Aggregate, event

from casetrail.contracts import events as contract
from casetrail.runtime.eventstore import event_id, publish


def case_id_for_idempotency_key(key: str) -> UUID:
    """The same Idempotency-Key always names the same case, so a retry cannot open two."""
    return uuid5(NAMESPACE_URL, f"casetrail:intake:idempotency:{key}")


class IntakeCase(Aggregate):
    @staticmethod
    def create_id(case_id: UUID) -> UUID:
        return case_id

    @event("Opened")
    def __init__(
        self,
        *,
        case_id: UUID,
        channel: str,
        customer_ref: str,
        subject: str,
        description: str,
        transaction_id: str | None,
        transaction_time: datetime | None,
        attachments: list[dict[str, Any]],
        opened_at: datetime,
        request_fingerprint: str,
        correlation_id: UUID,
        causation_id: UUID | None,
    ) -> None:
        self.case_id = case_id
        self.channel = channel
        self.customer_ref = customer_ref
        self.subject = subject
        self.description = description
        self.transaction_id = transaction_id
        self.transaction_time = transaction_time
        self.attachments = attachments
        self.opened_at = opened_at
        self.request_fingerprint = request_fingerprint


publish(IntakeCase.Opened, contract.CaseOpened)


def open_case(
    case_id: UUID, request: dict[str, Any], request_fingerprint: str, now: datetime
) -> IntakeCase:
    """A new case from a validated request; its first event starts the case's correlation."""
    return IntakeCase(
        case_id=case_id,
        channel=str(request["channel"]),
        customer_ref=request["customer_ref"],
        subject=request["subject"],
        description=request["description"],
        transaction_id=request.get("transaction_id"),
        transaction_time=request.get("transaction_time"),
        attachments=list(request.get("attachments") or []),
        opened_at=now,
        request_fingerprint=request_fingerprint,
        correlation_id=event_id(IntakeCase.__name__, case_id, 1),
        causation_id=None,
    )
