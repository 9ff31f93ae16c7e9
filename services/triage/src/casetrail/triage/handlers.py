"""Triage's reactions to consumed events: one function per event type."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from casetrail.contracts.events import CaseOpened, CaseType, EscalationRequested, read_data
from casetrail.runtime.consumer import Delivery, Effects
from casetrail.runtime.service import BackgroundLoop, Components, periodically
from casetrail.triage import casework
from casetrail.triage.assignment import assign, end_of_shift_report
from casetrail.triage.domain import triage
from casetrail.triage.policy import TriagePolicy
from casetrail.triage.store import TriageApplication, read_model_rows


def _opened(app: TriageApplication, delivery: Delivery) -> CaseOpened:
    """The new case with the customer's words opened, for classifying; nothing keeps them."""
    if app.keyring is None:
        opened = delivery.data
    else:
        opened = read_data(app.keyring.reveal([delivery.envelope])[0])
    assert isinstance(opened, CaseOpened)
    return opened


def on_case_opened(
    app: TriageApplication, policy: TriagePolicy, delivery: Delivery, now: datetime
) -> Effects:
    """Classifies the new case and hands it to the least-loaded qualified agent on shift."""
    assert isinstance(delivery.data, CaseOpened)
    if app.triage_of(delivery.data.case_id) is not None:
        return Effects()  # republished by intake's outbox: already triaged
    envelope = delivery.envelope
    case = triage(_opened(app, delivery), policy, envelope.correlationid, envelope.id)
    agents, loads = app.workforce()
    decision = assign(
        policy.assignment,
        tier=case.tier,
        case_type=CaseType(case.case_type),
        rules_fired=tuple(case.rules_fired),
        agents=agents,
        loads=loads,
        now=now,
    )
    casework.assign(case, decision, assigned_by="triage", reason=None, now=now)
    return Effects([case], statements=read_model_rows(case))


def on_escalation_requested(
    app: TriageApplication, policy: TriagePolicy, delivery: Delivery, now: datetime
) -> Effects:
    """An SLA clock breached: the case goes up to the tier its rule names, once."""
    request = delivery.data
    assert isinstance(request, EscalationRequested)
    case = app.triage_of(request.case_id)
    if case is None or case.tier >= request.to_tier:
        return Effects()  # already there (or higher), e.g. a redelivered request
    casework.escalate(
        case,
        policy,
        to_tier=request.to_tier,
        reason=request.reason,
        escalated_by="sla-timer",
        rule_id=request.rule_id,
        now=now,
        causation_id=delivery.envelope.id,
    )
    return Effects([case], statements=read_model_rows(case))


def decider(
    app: TriageApplication,
    policy: TriagePolicy,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Callable[[Delivery], Effects]:
    def decide(delivery: Delivery) -> Effects:
        if isinstance(delivery.data, CaseOpened):
            return on_case_opened(app, policy, delivery, clock())
        if isinstance(delivery.data, EscalationRequested):
            return on_escalation_requested(app, policy, delivery, clock())
        return Effects()

    return decide


def report_shift_ends(app: TriageApplication, since: datetime, until: datetime) -> int:
    """Records every case still Assigned to an agent whose shift ended in (since, until]."""
    items = end_of_shift_report(app.roster(), app.cases_in_assigned(), since, until)
    for item in items:
        app.work_on(
            item.case_id,
            lambda case, item=item: casework.report_left_assigned(
                case, agent_id=item.agent_id, shift_ended_at=item.shift_ended_at, now=until
            ),
        )
    return len(items)


def shift_watch(
    every_seconds: float, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> BackgroundLoop:
    """A background loop: at each shift's end, the cases its agent left in Assigned.

    It looks a day back when it starts, so a shift that ended while triage was down is
    still reported; a case is reported once per shift end, whichever replica sees it.
    """
    reported_until: list[datetime] = []  # where the last successful round stopped

    async def report(components: Components) -> int:
        app = components.app
        assert isinstance(app, TriageApplication)
        until = clock()
        since = reported_until[-1] if reported_until else until - timedelta(days=1)
        count = await asyncio.to_thread(report_shift_ends, app, since, until)
        reported_until[:] = [until]
        return count

    return periodically(report, every_seconds, did="cases_left_assigned_at_shift_end")
