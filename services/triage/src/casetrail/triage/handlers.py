"""Triage's reactions to consumed events: one function per event type."""

from __future__ import annotations

from collections.abc import Callable

from casetrail.contracts.events import CaseOpened
from casetrail.runtime.consumer import Delivery, Effects
from casetrail.triage.domain import triage
from casetrail.triage.policy import TriagePolicy
from casetrail.triage.store import TriageApplication


def on_case_opened(app: TriageApplication, policy: TriagePolicy, delivery: Delivery) -> Effects:
    assert isinstance(delivery.data, CaseOpened)
    if app.triage_of(delivery.data.case_id) is not None:
        return Effects()  # republished by intake's outbox: already triaged
    envelope = delivery.envelope
    return Effects([triage(delivery.data, policy, envelope.correlationid, envelope.id)])


def decider(app: TriageApplication, policy: TriagePolicy) -> Callable[[Delivery], Effects]:
    def decide(delivery: Delivery) -> Effects:
        if isinstance(delivery.data, CaseOpened):
            return on_case_opened(app, policy, delivery)
        return Effects()

    return decide
