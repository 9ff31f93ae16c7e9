"""Audit's append-only store: every event, hash-chained per case, in causal order."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.audit.domain import (
    GENESIS_HASH,
    StoredRecord,
    chain_hash,
    opens_a_case,
    waiting_for,
)
from casetrail.contracts.envelope import Envelope

tables = MetaData()
records = Table(
    "audit_records",
    tables,
    Column("position", BigInteger, primary_key=True, autoincrement=True),
    Column("case_id", Uuid, nullable=False),
    Column("case_seq", Integer, nullable=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("event_type", String(200), nullable=False),
    Column("causation_id", Uuid),
    Column("envelope", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("recorded_at", DateTime(timezone=True), nullable=False),
    Column("kafka_topic", String(255), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Index("audit_records_case_seq", "case_id", "case_seq", unique=True),
)
case_heads = Table(
    "audit_case_heads",
    tables,
    Column("case_id", Uuid, primary_key=True),
    Column("last_seq", Integer, nullable=False),
    Column("last_hash", String(64), nullable=False),
)
parked = Table(
    "audit_parked",
    tables,
    Column("event_id", Uuid, primary_key=True),
    Column("waiting_for", String(100), nullable=False, index=True),
    Column("envelope", Text, nullable=False),
    Column("kafka_topic", String(255), nullable=False),
    Column("kafka_partition", Integer, nullable=False),
    Column("kafka_offset", BigInteger, nullable=False),
    Column("parked_at", DateTime(timezone=True), nullable=False),
)

# The store only ever grows: the database refuses to change or remove a record.
APPEND_ONLY_DDL = (
    """
    CREATE OR REPLACE FUNCTION audit_records_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_records is append-only: % refused', TG_OP;
    END $$
    """,
    "DROP TRIGGER IF EXISTS audit_records_append_only ON audit_records",
    """
    CREATE TRIGGER audit_records_append_only
    BEFORE UPDATE OR DELETE OR TRUNCATE ON audit_records
    FOR EACH STATEMENT EXECUTE FUNCTION audit_records_append_only()
    """,
)


async def install_append_only_guard(conn: AsyncConnection, runtime_role: str) -> None:
    """The trigger stops everyone, the owner included; the runtime role also lacks the right."""
    for statement in APPEND_ONLY_DDL:
        await conn.execute(text(statement))
    if runtime_role:
        await conn.execute(
            text(f'REVOKE UPDATE, DELETE, TRUNCATE ON audit_records FROM "{runtime_role}"')
        )


async def _is_recorded(conn: AsyncConnection, event_id: UUID) -> bool:
    found = await conn.execute(select(records.c.event_id).where(records.c.event_id == event_id))
    return found.first() is not None


async def _is_parked(conn: AsyncConnection, event_id: UUID) -> bool:
    found = await conn.execute(select(parked.c.event_id).where(parked.c.event_id == event_id))
    return found.first() is not None


async def _blocker(conn: AsyncConnection, envelope: Envelope) -> str | None:
    recorded = set()
    if envelope.causationid is not None and await _is_recorded(conn, envelope.causationid):
        recorded.add(envelope.causationid)
    head = await conn.execute(
        select(case_heads.c.case_id).where(case_heads.c.case_id == envelope.subject)
    )
    return waiting_for(envelope, recorded, case_opened=head.first() is not None)


async def _append(conn: AsyncConnection, envelope: Envelope, origin: tuple[str, int, int]) -> None:
    # The head row is the case's lock: concurrent appends to one case queue up here.
    head = (
        await conn.execute(
            select(case_heads).where(case_heads.c.case_id == envelope.subject).with_for_update()
        )
    ).first()
    seq, previous = (head.last_seq + 1, head.last_hash) if head else (1, GENESIS_HASH)
    canonical = envelope.to_bytes()
    digest = chain_hash(previous, canonical)
    await conn.execute(
        records.insert().values(
            case_id=envelope.subject,
            case_seq=seq,
            event_id=envelope.id,
            event_type=envelope.type,
            causation_id=envelope.causationid,
            envelope=canonical.decode(),
            prev_hash=previous,
            hash=digest,
            recorded_at=datetime.now(UTC),
            kafka_topic=origin[0],
            kafka_partition=origin[1],
            kafka_offset=origin[2],
        )
    )
    if head:
        await conn.execute(
            case_heads.update()
            .where(case_heads.c.case_id == envelope.subject)
            .values(last_seq=seq, last_hash=digest)
        )
    else:
        await conn.execute(
            case_heads.insert().values(case_id=envelope.subject, last_seq=seq, last_hash=digest)
        )


async def record_event(
    conn: AsyncConnection, envelope: Envelope, origin: tuple[str, int, int]
) -> str:
    """Records the event, or parks it until what it depends on is recorded.

    Returns what happened: "recorded", "parked" or "duplicate".
    """
    # One case at a time: otherwise an event could be parked for a case whose opening
    # another replica records, and releases what waits for it, in the same instant.
    await conn.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:case_id, 0))"),
        {"case_id": str(envelope.subject)},
    )
    if await _is_recorded(conn, envelope.id) or await _is_parked(conn, envelope.id):
        return "duplicate"
    blocker = await _blocker(conn, envelope)
    if blocker is not None:
        await _park(conn, envelope, blocker, origin, datetime.now(UTC))
        return "parked"
    await _append(conn, envelope, origin)
    await _release(conn, envelope)
    return "recorded"


async def _park(
    conn: AsyncConnection,
    envelope: Envelope,
    blocker: str,
    origin: tuple[str, int, int],
    parked_at: datetime,
) -> None:
    await conn.execute(
        parked.insert().values(
            event_id=envelope.id,
            waiting_for=blocker,
            envelope=envelope.to_bytes().decode(),
            kafka_topic=origin[0],
            kafka_partition=origin[1],
            kafka_offset=origin[2],
            parked_at=parked_at,
        )
    )


async def _release(conn: AsyncConnection, recorded: Envelope) -> None:
    """Records every parked event that was waiting for `recorded`, and theirs in turn."""
    keys = [f"event:{recorded.id}"]
    if opens_a_case(recorded):
        keys.append(f"case:{recorded.subject}")
    waiting = (
        await conn.execute(parked.delete().where(parked.c.waiting_for.in_(keys)).returning(parked))
    ).all()
    for row in sorted(waiting, key=lambda r: (r.kafka_topic, r.kafka_partition, r.kafka_offset)):
        envelope = Envelope.model_validate_json(row.envelope)
        origin = (row.kafka_topic, row.kafka_partition, row.kafka_offset)
        blocker = await _blocker(conn, envelope)
        if blocker is None:
            await _append(conn, envelope, origin)
            await _release(conn, envelope)
        else:
            await _park(conn, envelope, blocker, origin, row.parked_at)


async def case_history(
    conn: AsyncConnection, case_id: UUID, after_seq: int = 0, limit: int = 100
) -> list[Any]:
    rows = await conn.execute(
        select(records)
        .where(records.c.case_id == case_id, records.c.case_seq > after_seq)
        .order_by(records.c.case_seq)
        .limit(limit)
    )
    return list(rows)


async def chain_of(conn: AsyncConnection, case_id: UUID) -> tuple[list[StoredRecord], int | None]:
    rows = await conn.execute(
        select(
            records.c.case_seq,
            records.c.event_id,
            records.c.envelope,
            records.c.prev_hash,
            records.c.hash,
        )
        .where(records.c.case_id == case_id)
        .order_by(records.c.case_seq)
    )
    chain = [StoredRecord(r.case_seq, r.event_id, r.envelope, r.prev_hash, r.hash) for r in rows]
    head = (
        await conn.execute(select(case_heads.c.last_seq).where(case_heads.c.case_id == case_id))
    ).first()
    return chain, head.last_seq if head else None
