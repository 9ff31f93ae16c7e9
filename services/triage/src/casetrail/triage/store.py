"""Triage's event store: one triage record per case."""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from casetrail.runtime.eventstore import ServiceApplication
from casetrail.triage.domain import CaseTriage


class TriageApplication(ServiceApplication):
    name = "triage"

    def triage_of(self, case_id: UUID) -> CaseTriage | None:
        try:
            return self.repository.get(case_id)
        except AggregateNotFoundError:
            return None
