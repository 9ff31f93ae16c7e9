"""The SLA timer's event store (clocks) and its durable timers table."""

from __future__ import annotations

from datetime import datetime, timedelta
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from sqlalchemy import Column, DateTime, Index, MetaData, String, Table, Uuid, text

from casetrail.runtime.eventstore import ServiceApplication, Statement
from casetrail.sla_timer.domain import Clock

tables = MetaData()
timers = Table(
    "sla_timers",
    tables,
    Column("clock_id", Uuid, primary_key=True),
    Column("case_id", Uuid, nullable=False, index=True),
    Column("clock", String(40), nullable=False),
    Column("due_at", DateTime(timezone=True), nullable=False),
    Column("fired_at", DateTime(timezone=True)),
    Column("claimed_until", DateTime(timezone=True)),
    Column("claimed_by", String(200)),
    Index("sla_timers_pending", "due_at", postgresql_where=text("fired_at IS NULL")),
)


def timer_inserted(clock: Clock) -> Statement:
    return (
        "INSERT INTO sla_timers (clock_id, case_id, clock, due_at) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT (clock_id) DO NOTHING",
        (clock.id, clock.case_id, clock.clock, clock.deadline),
    )


def timer_fired(clock_id: UUID, now: datetime) -> Statement:
    return ("UPDATE sla_timers SET fired_at = %s WHERE clock_id = %s", (now, clock_id))


class SlaApplication(ServiceApplication):
    name = "sla_timer"

    def clock(self, clock_id: UUID) -> Clock | None:
        try:
            return self.repository.get(clock_id)
        except AggregateNotFoundError:
            return None

    def fire(self, clock_id: UUID, now: datetime, late_after: timedelta) -> bool:
        """Breaches the clock if it is still running, and retires its timer, atomically.

        Two schedulers firing the same timer race on the clock's next version; the loser
        gets IntegrityError, reloads, finds the clock breached and only retires the timer.
        """
        for _ in range(3):
            clock = self.clock(clock_id)
            if clock is None:
                self.save_tracked(statements=[timer_fired(clock_id, now)])
                return False
            fired = clock.breach(now, late_after)
            try:
                self.save_tracked(clock, statements=[timer_fired(clock_id, now)])
            except IntegrityError:
                continue
            return fired
        return False
