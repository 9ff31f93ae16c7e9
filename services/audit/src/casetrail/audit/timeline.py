"""The evidence bundle's page for people: who did what and when, which SLA clocks ran and
how each ended, which rules fired. Pure; the same events give the same bytes.

Event data is untrusted (a customer writes the subject), so every value is escaped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from html import escape
from typing import Any
from uuid import UUID

from casetrail.contracts import events as ev
from casetrail.contracts.case import CaseState
from casetrail.contracts.envelope import Envelope
from casetrail.evidence.bundle import case_state_of

STYLE = (
    "body{font-family:sans-serif;margin:2em;color:#222}"
    "table{border-collapse:collapse;width:100%;margin-bottom:2em}"
    "th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}code{font-size:0.85em}"
)


def _money(amount: ev.Money) -> str:
    units, cents = divmod(amount.amount_minor, 100)
    return f"{units}.{cents:02d} {amount.currency}"


DESCRIBE: dict[type, Callable[[Any], str]] = {
    ev.CaseOpened: lambda d: f"case opened on {d.channel.value}: {d.subject}",
    ev.MessageReceived: lambda d: f"message on {d.channel.value} ({d.continued_by})",
    ev.CaseTriaged: lambda d: f"triaged {d.severity.value} {d.case_type.value}, tier {d.tier}",
    ev.CaseAssigned: lambda d: f"assigned to {d.agent_id or 'the queue'}",
    ev.CaseStatusChanged: lambda d: f"status {d.from_status} → {d.to_status}",
    ev.CaseEscalated: lambda d: f"escalated to tier {d.to_tier}: {d.reason}",
    ev.CaseReclassified: lambda d: f"reclassified {d.severity.value} {d.case_type.value}",
    ev.WorklogEntryAdded: lambda d: f"worklog: {d.action} → {d.outcome}",
    ev.NextActionSet: lambda d: f"next action: {d.next_action}",
    ev.SatisfactionRecorded: lambda d: f"satisfaction {d.score}",
    ev.ClockStarted: lambda d: f"clock {d.clock.value} started, due {d.deadline.isoformat()}",
    ev.ClockWarning: lambda d: f"clock {d.clock.value} at {round(d.fraction * 100)}%",
    ev.ClockMet: lambda d: f"clock {d.clock.value} met {'on time' if d.on_time else 'late'}",
    ev.ClockBreached: lambda d: f"clock {d.clock.value} breached",
    ev.ClockPaused: lambda d: f"clock {d.clock.value} paused",
    ev.ClockResumed: lambda d: f"clock {d.clock.value} resumed",
    ev.ClockWithdrawn: lambda d: f"clock {d.clock.value} withdrawn: {d.reason}",
    ev.EscalationRequested: lambda d: f"escalation to tier {d.to_tier} requested",
    ev.RefundRequested: lambda d: f"refund of {_money(d.amount)} requested",
    ev.CreditRequested: lambda d: f"credit of {_money(d.amount)} requested",
    ev.RefundIssued: lambda d: "refund issued",
    ev.CreditGranted: lambda d: "credit granted",
    ev.QaSampled: lambda d: f"sampled for QA ({d.reason.value})",
    ev.QaScored: lambda d: f"QA scorecard by {d.reviewer}",
}


def _actor(envelope: Envelope, data: ev.Payload | None) -> str:
    if data is not None:
        for name, value in sorted(data.model_dump().items()):
            if (name.endswith("_by") or name in ("author", "reviewer")) and isinstance(value, str):
                return value
    return envelope.source


def _rules(data: ev.Payload | None) -> list[str]:
    if data is None:
        return []
    fields = data.model_dump()
    found = [fields["rule_id"]] if isinstance(fields.get("rule_id"), str) else []
    return found + [r for r in fields.get("rules_fired") or [] if isinstance(r, str)]


def _read(envelope: Envelope) -> ev.Payload | None:
    try:
        return ev.read_data(envelope)
    except ev.ContractError:
        return None


def _row(*cells: str) -> str:
    return "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in cells) + "</tr>"


def _table(headings: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headings)
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _summary(state: CaseState | None) -> str:
    if state is None:
        return "<p>No case state: these events are not a case's.</p>"
    facts = [
        ("Status", state.status),
        ("Severity", state.severity),
        ("Case type", state.case_type),
        ("Tier", state.tier),
        ("Assignee", state.assignee),
        ("Escalations", state.escalations),
        ("QA", state.qa_sampled),
    ]
    return _table(["Fact", "Value"], [_row(k, "—" if v is None else str(v)) for k, v in facts])


def _clocks(state: CaseState | None) -> str:
    clocks = sorted((state.clocks if state else {}).values(), key=lambda c: c.deadline)
    rows = [
        _row(c.clock, c.rule_id or "—", c.deadline.isoformat(), c.state, str(c.warnings))
        for c in clocks
    ]
    return _table(["Clock", "Rule", "Deadline", "Outcome", "Warnings"], rows)


def render_timeline(case_id: UUID, envelopes: Sequence[Envelope], generated_at: datetime) -> str:
    """A self-contained HTML page (inline style, no scripts, nothing fetched)."""
    readable = [(envelope, _read(envelope)) for envelope in envelopes]
    state = case_state_of([envelope for envelope, data in readable if data is not None])
    events, rules = [], []
    for envelope, data in readable:
        describe = DESCRIBE.get(type(data))
        what = describe(data) if describe else envelope.type
        if data is None:
            what = f"unrecognised event type {envelope.type}"
        at = envelope.time.isoformat()
        events.append(_row(at, envelope.type, _actor(envelope, data), what, str(envelope.id)))
        rules += [_row(rule, at, envelope.type) for rule in _rules(data)]
    span = (
        f"{envelopes[0].time.isoformat()} to {envelopes[-1].time.isoformat()}" if envelopes else ""
    )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>Case {escape(str(case_id))}</title><style>{STYLE}</style></head><body>"
        f"<h1>Case {escape(str(case_id))} — evidence timeline</h1>"
        f"<p>Generated {escape(generated_at.isoformat())}; {len(envelopes)} events, "
        f"{escape(span)}.</p>"
        f"<h2>Case as the events leave it</h2>{_summary(state)}"
        f"<h2>SLA clocks</h2>{_clocks(state)}"
        f"<h2>Rules fired</h2>{_table(['Rule', 'When', 'Event'], rules)}"
        f"<h2>Timeline</h2>{_table(['When (UTC)', 'Event', 'Who', 'What', 'Event id'], events)}"
        "</body></html>"
    )
