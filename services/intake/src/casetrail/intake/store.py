"""Intake's event store: cases, opened once per idempotency key."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from casetrail.intake.domain import IntakeCase, open_case
from casetrail.runtime.eventstore import ServiceApplication
from casetrail.runtime.service import DomainError


class IdempotencyKeyReused(DomainError):
    status_code = 409
    code = "idempotency_key_reused"


class IntakeApplication(ServiceApplication):
    name = "intake"

    def open_case(
        self, case_id: UUID, request: dict[str, Any], request_fingerprint: str, now: datetime
    ) -> tuple[IntakeCase, bool]:
        """Opens the case, or returns the one this same request opened before."""
        case = open_case(case_id, request, request_fingerprint, now)
        try:
            self.save(case)
        except IntegrityError:
            existing = self.case(case_id)
            if existing is None or existing.request_fingerprint != request_fingerprint:
                raise IdempotencyKeyReused(
                    "this Idempotency-Key was used for a different request",
                    case_id=str(case_id),
                ) from None
            return existing, False
        return case, True

    def case(self, case_id: UUID) -> IntakeCase | None:
        try:
            return self.repository.get(case_id)
        except AggregateNotFoundError:
            return None
