"""Audit's append-only store: every event, hash-chained per case, in causal order, and a
leaf of the global Merkle log whose signed tree heads it keeps."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    exists,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from casetrail.audit.domain import (
    GENESIS_HASH,
    LogEntry,
    StoredRecord,
    chain_hash,
    opens_a_case,
    waiting_for,
)
from casetrail.contracts.envelope import Envelope
from casetrail.evidence import merkle
from casetrail.evidence.tree_head import TreeHead
from casetrail.runtime.logs import log

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

log_leaves = Table(
    "audit_log_leaves",
    tables,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("event_id", Uuid, nullable=False, unique=True),
    Column("leaf_hash", LargeBinary, nullable=False),
)
tree_heads = Table(
    "audit_tree_heads",
    tables,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("signed_at", DateTime(timezone=True), nullable=False),
    Column("key_id", String(64), nullable=False),
    Column("signature", LargeBinary, nullable=False),
)
APPEND_ONLY_TABLES = ("audit_records", "audit_log_leaves", "audit_tree_heads")
# One writer at a time extends the global log, so leaf indices are dense and every reader
# sees a prefix of it: a transaction's leaves become visible only after the ones before.
LOG_WRITER_LOCK = 0x6361_7365_7472_6C  # "casetrl"

APPEND_ONLY_FUNCTION = """
    CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP;
    END $$
"""


async def install_append_only_guard(conn: AsyncConnection, runtime_role: str) -> None:
    """The store only ever grows: a trigger stops everyone, the owner included, from
    changing or removing a record; the runtime role also lacks the right."""
    await conn.execute(text(APPEND_ONLY_FUNCTION))
    for table in APPEND_ONLY_TABLES:
        await conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
        await conn.execute(
            text(
                f"CREATE TRIGGER {table}_append_only "
                f"BEFORE UPDATE OR DELETE OR TRUNCATE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only()"
            )
        )
        if runtime_role:
            await conn.execute(
                text(f'REVOKE UPDATE, DELETE, TRUNCATE ON {table} FROM "{runtime_role}"')
            )


# Records kept before the log existed join it, in the order they were recorded, each
# leaf hashed as RFC 6962 does: SHA-256(0x00 || the record's canonical bytes).
LOG_BACKFILL = """
    INSERT INTO audit_log_leaves (leaf_index, event_id, leaf_hash)
    SELECT (SELECT coalesce(max(leaf_index) + 1, 0) FROM audit_log_leaves)
               + row_number() OVER (ORDER BY r.position) - 1,
           r.event_id,
           sha256('\\x00'::bytea || convert_to(r.envelope, 'UTF8'))
    FROM audit_records r
    WHERE NOT EXISTS (SELECT 1 FROM audit_log_leaves l WHERE l.event_id = r.event_id)
"""


async def set_up_store(conn: AsyncConnection, runtime_role: str) -> None:
    """At start, as the schema's owner: the append-only guard, then any record written
    before the global log existed is given its leaf."""
    await install_append_only_guard(conn, runtime_role)
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOG_WRITER_LOCK})
    backfilled = await conn.execute(text(LOG_BACKFILL))
    if backfilled.rowcount:
        log.info("audit_log_backfilled", leaves=backfilled.rowcount)


async def _become_the_log_writer(conn: AsyncConnection) -> None:
    """One writer at a time, for the global log; it also keeps an event from being parked
    for a case whose opening another replica records in the same instant.

    The lock lasts until the transaction ends, so a batch takes it, and reads where the
    log ends, once.
    """
    transaction = conn.sync_connection.get_transaction() if conn.sync_connection else None
    if transaction is not None and conn.info.get("log_writer_of") is transaction:
        return
    await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOG_WRITER_LOCK})
    log_end, anything_parked = (
        await conn.execute(
            select(
                func.coalesce(func.max(log_leaves.c.leaf_index) + 1, 0),
                exists().where(parked.c.event_id.is_not(None)),
            )
        )
    ).one()
    conn.info["log_writer_of"] = transaction
    conn.info["next_leaf"] = log_end
    # Nothing waits in most batches: then recording an event releases nothing.
    conn.info["may_have_parked"] = anything_parked


def _next_leaf(conn: AsyncConnection) -> int:
    leaf: int = conn.info["next_leaf"]
    conn.info["next_leaf"] = leaf + 1
    return leaf


async def _is_recorded(conn: AsyncConnection, event_id: UUID) -> bool:
    found = await conn.execute(select(records.c.event_id).where(records.c.event_id == event_id))
    return found.first() is not None


async def _is_known(conn: AsyncConnection, event_id: UUID) -> bool:
    """Recorded or parked already."""
    found = await conn.execute(
        select(
            exists().where(records.c.event_id == event_id)
            | exists().where(parked.c.event_id == event_id)
        )
    )
    return bool(found.scalar_one())


async def _head(conn: AsyncConnection, case_id: UUID) -> Any:
    """The case's chain head, None before its first record."""
    return (await conn.execute(select(case_heads).where(case_heads.c.case_id == case_id))).first()


async def _blocker(conn: AsyncConnection, envelope: Envelope, head: Any) -> str | None:
    recorded = set()
    if envelope.causationid is not None and await _is_recorded(conn, envelope.causationid):
        recorded.add(envelope.causationid)
    return waiting_for(envelope, recorded, case_opened=head is not None)


async def _append(
    conn: AsyncConnection, envelope: Envelope, origin: tuple[str, int, int], head: Any
) -> None:
    seq, previous = (head.last_seq + 1, head.last_hash) if head else (1, GENESIS_HASH)
    canonical = envelope.to_bytes()
    digest = chain_hash(previous, canonical)
    await conn.execute(
        log_leaves.insert().values(
            leaf_index=_next_leaf(conn), event_id=envelope.id, leaf_hash=merkle.leaf_hash(canonical)
        )
    )
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
    await conn.execute(
        pg_insert(case_heads)
        .values(case_id=envelope.subject, last_seq=seq, last_hash=digest)
        .on_conflict_do_update(
            index_elements=[case_heads.c.case_id], set_={"last_seq": seq, "last_hash": digest}
        )
    )


async def record_event(
    conn: AsyncConnection, envelope: Envelope, origin: tuple[str, int, int]
) -> str:
    """Records the event, or parks it until what it depends on is recorded.

    Returns what happened: "recorded", "parked" or "duplicate".
    """
    await _become_the_log_writer(conn)
    if await _is_known(conn, envelope.id):
        return "duplicate"
    head = await _head(conn, envelope.subject)
    blocker = await _blocker(conn, envelope, head)
    if blocker is not None:
        await _park(conn, envelope, blocker, origin, datetime.now(UTC))
        return "parked"
    await _append(conn, envelope, origin, head)
    await _release(conn, envelope)
    return "recorded"


async def _park(
    conn: AsyncConnection,
    envelope: Envelope,
    blocker: str,
    origin: tuple[str, int, int],
    parked_at: datetime,
) -> None:
    conn.info["may_have_parked"] = True
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
    if not conn.info.get("may_have_parked", True):
        return
    keys = [f"event:{recorded.id}"]
    if opens_a_case(recorded):
        keys.append(f"case:{recorded.subject}")
    waiting = (
        await conn.execute(parked.delete().where(parked.c.waiting_for.in_(keys)).returning(parked))
    ).all()
    for row in sorted(waiting, key=lambda r: (r.kafka_topic, r.kafka_partition, r.kafka_offset)):
        envelope = Envelope.model_validate_json(row.envelope)
        origin = (row.kafka_topic, row.kafka_partition, row.kafka_offset)
        head = await _head(conn, envelope.subject)
        blocker = await _blocker(conn, envelope, head)
        if blocker is None:
            await _append(conn, envelope, origin, head)
            await _release(conn, envelope)
        else:
            await _park(conn, envelope, blocker, origin, row.parked_at)


async def case_history(
    conn: AsyncConnection, case_id: UUID, after_seq: int = 0, limit: int | None = None
) -> list[Any]:
    """The case's records in chain order, each with its leaf in the global log."""
    query = (
        select(records, log_leaves.c.leaf_index, log_leaves.c.leaf_hash)
        .join(log_leaves, log_leaves.c.event_id == records.c.event_id, isouter=True)
        .where(records.c.case_id == case_id, records.c.case_seq > after_seq)
        .order_by(records.c.case_seq)
    )
    return list(await conn.execute(query if limit is None else query.limit(limit)))


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


async def leaves_from(conn: AsyncConnection, start: int) -> list[bytes]:
    rows = await conn.execute(
        select(log_leaves.c.leaf_hash)
        .where(log_leaves.c.leaf_index >= start)
        .order_by(log_leaves.c.leaf_index)
    )
    return [bytes(row.leaf_hash) for row in rows]


def _tree_head_of(row: Any) -> TreeHead:
    return TreeHead(
        tree_size=row.tree_size,
        root_hash=bytes(row.root_hash),
        timestamp=row.signed_at,
        key_id=row.key_id,
        signature=bytes(row.signature),
    )


async def latest_tree_head(conn: AsyncConnection) -> TreeHead | None:
    row = (
        await conn.execute(select(tree_heads).order_by(tree_heads.c.tree_size.desc()).limit(1))
    ).first()
    return _tree_head_of(row) if row else None


async def tree_head_at(conn: AsyncConnection, tree_size: int) -> TreeHead | None:
    found = await conn.execute(select(tree_heads).where(tree_heads.c.tree_size == tree_size))
    row = found.first()
    return _tree_head_of(row) if row else None


async def save_tree_head(conn: AsyncConnection, head: TreeHead) -> None:
    """Keeps the first head signed at a size: replicas racing to sign the same size agree."""
    await conn.execute(
        pg_insert(tree_heads)
        .values(
            tree_size=head.tree_size,
            root_hash=head.root_hash,
            signed_at=head.timestamp,
            key_id=head.key_id,
            signature=head.signature,
        )
        .on_conflict_do_nothing(index_elements=["tree_size"])
    )


async def log_entries(conn: AsyncConnection) -> AsyncIterator[LogEntry]:
    """Every leaf in log order with its record's bytes, streamed (the log can be large)."""
    query = (
        select(log_leaves, records.c.envelope)
        .join(records, records.c.event_id == log_leaves.c.event_id, isouter=True)
        .order_by(log_leaves.c.leaf_index)
    )
    async for row in await conn.stream(query.execution_options(yield_per=2000)):
        yield LogEntry(row.leaf_index, row.event_id, bytes(row.leaf_hash), row.envelope)


async def unlogged_record(conn: AsyncConnection) -> Any:
    """A record that has no leaf in the log, if any."""
    query = (
        select(records.c.event_id, records.c.case_id, records.c.case_seq)
        .join(log_leaves, log_leaves.c.event_id == records.c.event_id, isouter=True)
        .where(log_leaves.c.event_id.is_(None))
        .order_by(records.c.position)
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def all_tree_heads(conn: AsyncConnection) -> list[TreeHead]:
    rows = await conn.execute(select(tree_heads).order_by(tree_heads.c.tree_size))
    return [_tree_head_of(row) for row in rows]
