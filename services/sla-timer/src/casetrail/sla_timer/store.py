"""The SLA timer's event store (each case's clocks), its durable timers and its clock table.

Every save of a case's clocks also rewrites that case's pending timers and its rows in
the clock table, in the same transaction: a timer exists exactly while its clock needs it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    MetaData,
    SmallInteger,
    String,
    Table,
    Uuid,
    text,
)

from casetrail.runtime.eventstore import ServiceApplication, Statement
from casetrail.runtime.service import DomainError
from casetrail.sla_timer.calendar import BusinessCalendar
from casetrail.sla_timer.domain import CaseClocks, Timer
from casetrail.sla_timer.policy import SlaPolicy

tables = MetaData()
timers = Table(
    "sla_clock_timers",
    tables,
    Column("timer_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False, index=True),
    Column("clock_id", Uuid, nullable=False),
    Column("purpose", String(40), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("claimed_by", String(200)),
    Index("sla_clock_timers_pending", "due_at", postgresql_where=text("fired_at IS NULL")),
)
clocks = Table(
    "sla_clocks",
    tables,
    Column("clock_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False, index=True),
    Column("rule_id", String(100), nullable=False),
    Column("clock", String(40), nullable=False),
    Column("case_type", String(40)),
    Column("channel", String(40)),
    Column("severity", String(4)),
    Column("tier", SmallInteger),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("deadline", DateTime(timezone=True), nullable=False),
    Column("state", String(20), nullable=False),
    Column("settled_at", DateTime(timezone=True)),
    Column("on_time", Boolean),
    Index("sla_clocks_by_deadline", "deadline"),
)


def _clock_rows(case: CaseClocks) -> list[Statement]:
    facts = case.facts
    return [
        (
            "INSERT INTO sla_clocks (clock_id, case_id, rule_id, clock, case_type, channel,"
            " severity, tier, started_at, deadline, state, settled_at, on_time)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " ON CONFLICT (clock_id) DO UPDATE SET case_type = EXCLUDED.case_type,"
            " channel = EXCLUDED.channel, severity = EXCLUDED.severity, tier = EXCLUDED.tier,"
            " deadline = EXCLUDED.deadline, state = EXCLUDED.state,"
            " settled_at = EXCLUDED.settled_at, on_time = EXCLUDED.on_time",
            (
                clock.clock_id,
                case.case_id,
                clock.rule_id,
                clock.clock.value,
                facts.get("case_type"),
                facts.get("channel"),
                facts.get("severity"),
                facts.get("tier"),
                clock.started_at,
                clock.deadline,
                clock.state,
                clock.settled_at,
                clock.on_time,
            ),
        )
        for clock in case.clocks.values()
    ]


def _timer_rows(case: CaseClocks, pending: list[Timer]) -> list[Statement]:
    # A timer that already fired keeps its row, so the same timer is never inserted again.
    statements: list[Statement] = [
        ("DELETE FROM sla_clock_timers WHERE case_id = %s AND fired_at IS NULL", (case.case_id,))
    ]
    statements += [
        (
            "INSERT INTO sla_clock_timers (timer_id, case_id, clock_id, purpose, due_at)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (timer_id) DO NOTHING",
            (timer.timer_id, case.case_id, timer.clock_id, timer.purpose, timer.due_at),
        )
        for timer in pending
    ]
    return statements


def timer_fired(timer_id: UUID, now: datetime) -> Statement:
    return ("UPDATE sla_clock_timers SET fired_at = %s WHERE timer_id = %s", (now, timer_id))


class ClocksChangedConcurrently(DomainError):
    status_code = 409
    code = "clocks_changed_concurrently"


class SlaApplication(ServiceApplication):
    name = "sla_timer"

    def case_clocks(self, case_id: UUID) -> CaseClocks | None:
        try:
            return self.repository.get(CaseClocks.create_id(case_id))
        except AggregateNotFoundError:
            return None

    def schedule(
        self, case: CaseClocks, policy: SlaPolicy, calendars: Mapping[str, BusinessCalendar]
    ) -> list[Statement]:
        """The statements that keep the case's timers and clock rows in step with it."""
        return _timer_rows(case, case.pending_timers(policy, calendars)) + _clock_rows(case)

    def fire(
        self,
        timer: Timer,
        timer_id: UUID,
        case_id: UUID,
        now: datetime,
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
    ) -> bool:
        """Fires a due timer once: the clock's event, the timer retired and the next timers
        scheduled commit together. Two schedulers firing the same timer race on the case's
        next version; the loser reloads, finds nothing left to do, and only retires it."""
        late_after = timedelta(seconds=policy.late_after_seconds)
        for _ in range(3):
            case = self.case_clocks(case_id)
            if case is None:
                self.save_tracked(statements=[timer_fired(timer_id, now)])
                return False
            fired = case.fire(timer, now, late_after)
            statements = [timer_fired(timer_id, now)]
            if fired:
                statements += self.schedule(case, policy, calendars)
            try:
                self.save_tracked(case if fired else None, statements=statements)
            except IntegrityError:
                continue
            return fired
        return False

    def change(
        self,
        case_id: UUID,
        command: Callable[[CaseClocks], None],
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
    ) -> CaseClocks | None:
        """Applies a command to the case's newest clocks and reschedules, retrying a race."""
        for _ in range(3):
            case = self.case_clocks(case_id)
            if case is None:
                return None
            command(case)
            try:
                self.save_tracked(case, statements=self.schedule(case, policy, calendars))
            except IntegrityError:
                continue
            return case
        raise ClocksChangedConcurrently("the case's clocks changed meanwhile; retry")

    def rebuild_clock_list(
        self, progress: Callable[[int, int], None] = lambda done, total: None
    ) -> int:
        """Rebuilds `sla_clocks` (the dashboard's rows) from the event store alone. The
        timers are the scheduler's work queue, not a read model: they stay as they are."""
        return self.rebuild_read_models(("sla_clocks",), _clock_rows, progress)

    def open_cases(self) -> list[UUID]:
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT DISTINCT case_id FROM sla_clocks WHERE state IN ('running', 'paused')"
                " ORDER BY case_id"
            )
            return [row["case_id"] for row in cursor.fetchall()]

    def repair(
        self,
        policy: SlaPolicy,
        calendars: Mapping[str, BusinessCalendar],
        now: datetime,
    ) -> int:
        """Recomputes the open cases' clocks under this policy; returns how many changed."""
        corrected = 0
        for case_id in self.open_cases():
            before = self.case_clocks(case_id)
            if before is None:
                continue
            version = before.version

            def recompute(case: CaseClocks) -> None:
                case.reconcile(
                    policy, calendars, now, reason=f"repair under policy {policy.version}"
                )

            after = self.change(case_id, recompute, policy, calendars)
            corrected += after is not None and after.version != version
        return corrected
