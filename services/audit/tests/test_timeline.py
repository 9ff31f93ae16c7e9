"""The evidence timeline: who did what and when, escaped, and the same bytes every time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from casetrail.audit.timeline import render_timeline
from casetrail.contracts import events as ev
from casetrail.contracts.envelope import Envelope

T0 = datetime(2026, 11, 23, 9, tzinfo=UTC)


def envelope(payload: ev.EventData, minutes: int, type_: str | None = None) -> Envelope:
    return Envelope(
        id=uuid4(),
        source="/casetrail/test",
        type=type_ or payload.TYPE,
        time=T0 + timedelta(minutes=minutes),
        subject=payload.case_id,
        correlationid=payload.case_id,
        sequence=minutes + 1,
        data=payload.model_dump(mode="json"),
    )


def history():
    case_id = uuid4()
    clock_id, other_clock = uuid4(), uuid4()
    deadline = T0 + timedelta(hours=1)
    started = dict(
        case_id=case_id,
        started_at=T0,
        deadline=deadline,
        basis="calendar",
        target_minutes=60,
        calendar="always-open",
        policy_version="p1",
    )
    return case_id, [
        envelope(
            ev.CaseOpened(
                case_id=case_id,
                channel=ev.Channel.EMAIL,
                customer_ref="acct-1",
                subject="Fee <script>alert(1)</script>",
                description="Why?",
                opened_at=T0,
            ),
            0,
        ),
        envelope(
            ev.ClockStarted(
                clock_id=clock_id, clock=ev.ClockKind.FIRST_RESPONSE, rule_id="FR-EMAIL", **started
            ),
            1,
        ),
        envelope(
            ev.ClockStarted(
                clock_id=other_clock, clock=ev.ClockKind.RESOLUTION, rule_id="RES-S3", **started
            ),
            1,
        ),
        envelope(
            ev.ClockMet(
                case_id=case_id,
                clock_id=clock_id,
                clock=ev.ClockKind.FIRST_RESPONSE,
                rule_id="FR-EMAIL",
                deadline=deadline,
                met_at=T0 + timedelta(minutes=20),
                on_time=True,
                met_by="casetrail.case.worklog_entry_added.v1",
            ),
            20,
        ),
        envelope(
            ev.ClockBreached(
                case_id=case_id,
                clock_id=other_clock,
                clock=ev.ClockKind.RESOLUTION,
                deadline=deadline,
                breached_at=deadline,
                late=False,
                rule_id="RES-S3",
            ),
            60,
        ),
        envelope(
            ev.CaseStatusChanged(
                case_id=case_id,
                from_status="Assigned",
                to_status="Acknowledged",
                changed_by="agent-7",
                changed_at=T0 + timedelta(minutes=61),
            ),
            61,
        ),
        envelope(
            ev.CaseStatusChanged(
                case_id=case_id,
                from_status="Acknowledged",
                to_status="Pending On",
                changed_by="agent-7",
                changed_at=T0,
            ),
            62,
            "casetrail.case.made_up.v9",
        ),
    ]


def test_the_page_names_who_did_what_the_clocks_and_the_rules():
    case_id, events = history()
    page = render_timeline(case_id, events, T0 + timedelta(days=1))
    assert "status Assigned → Acknowledged" in page and "<td>agent-7</td>" in page
    assert "<td>first_response</td><td>FR-EMAIL</td>" in page
    first_response = page.index("<td>first_response</td><td>FR-EMAIL</td>")
    assert page.index("<td>met</td>", first_response) < page.index("RES-S3", first_response)
    assert "<td>resolution</td><td>RES-S3</td>" in page and "<td>breached</td>" in page
    assert "unrecognised event type casetrail.case.made_up.v9" in page


def test_customer_text_is_escaped_and_the_bytes_are_deterministic():
    case_id, events = history()
    page = render_timeline(case_id, events, T0)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert page == render_timeline(case_id, list(events), T0)


def test_money_is_shown_from_minor_units():
    from casetrail.audit import timeline

    amount = ev.Money(amount_minor=25005, currency="USD")
    assert timeline._money(amount) == "250.05 USD"
