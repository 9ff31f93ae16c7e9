"""Triage's event store (one record per case), the agent roster and the case-list read model.

The `triage_cases` row of a case is rewritten by the same transaction that stores the
case's new events, so lists never disagree with the events; it can be rebuilt from them.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from psycopg.types.json import Jsonb
from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)
from sqlalchemy.dialects.postgresql import JSONB

from casetrail.runtime.eventstore import ServiceApplication, Statement
from casetrail.runtime.service import DomainError, NotFound
from casetrail.triage.assignment import Agent
from casetrail.triage.domain import CaseTriage

OPEN_STATUSES = (
    "Assigned",
    "Acknowledged",
    "Pending On",
    "Awaiting Customer",
    "ESL QA",
    "Legal Review",
)

tables = MetaData()
case_list = Table(
    "triage_cases",
    tables,
    Column("case_id", Uuid, primary_key=True),
    Column("status", String(40)),
    Column("severity", String(4), nullable=False),
    Column("case_type", String(20), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("tier", Integer, nullable=False),
    Column("high_priority", Boolean, nullable=False),
    Column("channel", String(40), nullable=False),
    Column("assignee", String(200)),
    Column("partner", String(200)),
    Column("assignment_kind", String(10)),
    Column("next_action", String(500)),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("triage_cases_assignee", "assignee", "status"),
    Index("triage_cases_partner", "partner", "status"),
    Index("triage_cases_status", "status", "high_priority"),
)
qa_reviews = Table(
    "triage_qa_reviews",
    tables,
    Column("case_id", Uuid, primary_key=True),
    Column("reason", String(20), nullable=False),
    Column("sampled_at", DateTime(timezone=True), nullable=False),
    Column("scorecards", Integer, nullable=False),
    Index("triage_qa_reviews_waiting", "scorecards", "sampled_at"),
)
agents = Table(
    "triage_agents",
    tables,
    Column("agent_id", String(200), primary_key=True),
    Column("profile", JSONB, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)


def _roster(cursor: Any) -> list[Agent]:
    cursor.execute("SELECT profile FROM triage_agents ORDER BY agent_id")
    return [Agent.model_validate(row["profile"]) for row in cursor.fetchall()]


class StillContended(DomainError):
    status_code = 503
    code = "contended"


def read_model_rows(case: CaseTriage) -> list[Statement]:
    """The case's rows in the case list and, once sampled, the QA queue."""
    return [case_row(case), *([qa_row(case)] if case.qa_sampled else [])]


def qa_row(case: CaseTriage) -> Statement:
    values = {
        "case_id": case.id,
        "reason": case.qa_sampled,
        "sampled_at": case.qa_sampled_at,
        "scorecards": case.qa_scorecards,
    }
    return (
        "INSERT INTO triage_qa_reviews (case_id, reason, sampled_at, scorecards) "
        "VALUES (%(case_id)s, %(reason)s, %(sampled_at)s, %(scorecards)s) "
        "ON CONFLICT (case_id) DO UPDATE SET scorecards = excluded.scorecards",
        values,
    )


def case_row(case: CaseTriage) -> Statement:
    """The case's row in the case list, as of its newest event."""
    values = {
        "case_id": case.id,
        "status": case.status,
        "severity": case.severity,
        "case_type": case.case_type,
        "kind": case.kind,
        "tier": case.tier,
        "high_priority": case.high_priority,
        "channel": case.channel,
        "assignee": case.assignee,
        "partner": case.partner,
        "assignment_kind": case.assignment_kind,
        "next_action": case.next_action,
        "opened_at": case.opened_at,
        "updated_at": case.updated_at,
    }
    columns = ", ".join(values)
    placeholders = ", ".join(f"%({name})s" for name in values)
    updates = ", ".join(f"{name} = excluded.{name}" for name in values if name != "case_id")
    return (
        f"INSERT INTO triage_cases ({columns}) VALUES ({placeholders}) "
        f"ON CONFLICT (case_id) DO UPDATE SET {updates}",
        values,
    )


class TriageApplication(ServiceApplication):
    name = "triage"

    def triage_of(self, case_id: UUID) -> CaseTriage | None:
        try:
            return self.repository.get(case_id)
        except AggregateNotFoundError:
            return None

    def roster(self) -> list[Agent]:
        with self.recorder.datastore.transaction(commit=False) as cursor:
            return _roster(cursor)

    def workforce(self) -> tuple[list[Agent], dict[str, int]]:
        """The roster and each agent's open cases, read together for one assignment."""
        with self.recorder.datastore.transaction(commit=False) as cursor:
            roster = _roster(cursor)
            cursor.execute(
                "SELECT assignee, count(*) AS open_cases FROM triage_cases "
                "WHERE assignee IS NOT NULL AND status = ANY(%s) GROUP BY assignee",
                (list(OPEN_STATUSES),),
            )
            return roster, {row["assignee"]: row["open_cases"] for row in cursor.fetchall()}

    def put_agent(self, agent: Agent, now: datetime) -> None:
        with self.recorder.datastore.transaction(commit=True) as cursor:
            cursor.execute(
                "INSERT INTO triage_agents (agent_id, profile, updated_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (agent_id) DO UPDATE SET profile = excluded.profile, "
                "updated_at = excluded.updated_at",
                (agent.agent_id, Jsonb(agent.model_dump(mode="json")), now),
            )

    def cases_in_assigned(self) -> dict[str, list[UUID]]:
        with self.recorder.datastore.transaction(commit=False) as cursor:
            cursor.execute(
                "SELECT assignee, case_id FROM triage_cases "
                "WHERE status = 'Assigned' AND assignee IS NOT NULL ORDER BY case_id"
            )
            found: dict[str, list[UUID]] = {}
            for row in cursor.fetchall():
                found.setdefault(row["assignee"], []).append(row["case_id"])
            return found

    def rebuild_case_list(
        self, progress: Callable[[int, int], None] = lambda done, total: None
    ) -> int:
        """Rebuilds `triage_cases` and the QA queue from the event store alone."""
        return self.rebuild_read_models(
            ("triage_cases", "triage_qa_reviews"), read_model_rows, progress
        )

    def work_on(self, case_id: UUID, command: Callable[[CaseTriage], Any]) -> CaseTriage:
        """Runs a command on the case and saves its events with the case's list row; on a
        concurrent change, reloads and runs it again."""
        for _ in range(5):
            case = self.triage_of(case_id)
            if case is None:
                raise NotFound("triage has no record of this case", case_id=str(case_id))
            before = case.version
            command(case)
            if case.version == before:
                return case
            try:
                self.save_tracked(case, statements=read_model_rows(case))
            except IntegrityError:
                continue
            return case
        raise StillContended("the case is changing under heavy contention; retry")
