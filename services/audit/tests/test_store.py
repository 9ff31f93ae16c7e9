"""Audit's store against a real PostgreSQL: causal order whatever the arrival order."""

from __future__ import annotations

from uuid import uuid4

import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from casetrail.audit.domain import verify_chain
from casetrail.audit.store import chain_of, install_append_only_guard, record_event, tables
from casetrail.runtime.settings import asyncpg_url

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
async def engine(stack):
    stack.postgres.ensure_service_database("audit_store_test")
    url = stack.postgres.owner_url("audit_store_test")
    engine = create_async_engine(asyncpg_url(url))
    async with engine.begin() as conn:
        await conn.run_sync(tables.create_all)
        await install_append_only_guard(conn, "audit_store_test")
    yield engine
    await engine.dispose()


async def test_events_arriving_before_their_causes_are_recorded_after_them(engine, new_event):
    case_id = uuid4()
    opened = new_event(case_id, "casetrail.case.opened.v1", None)
    triaged = new_event(case_id, "casetrail.case.triaged.v1", opened)
    clock = new_event(case_id, "casetrail.clock.started.v1", triaged)
    refund = new_event(case_id, "casetrail.refund.requested.v1", None)  # caused by an agent

    outcomes = []
    for offset, envelope in enumerate([clock, refund, triaged, opened, triaged]):
        async with engine.begin() as conn:
            outcomes.append(await record_event(conn, envelope, ("t", 0, offset)))
    assert outcomes == ["parked", "parked", "parked", "recorded", "duplicate"]

    async with engine.connect() as conn:
        chain, head = await chain_of(conn, case_id)
    recorded = [record.event_id for record in chain]
    assert recorded[0] == opened.id
    assert recorded.index(triaged.id) < recorded.index(clock.id)
    assert set(recorded) == {opened.id, triaged.id, clock.id, refund.id}
    assert verify_chain(chain, head) is None


async def test_every_recorded_event_is_a_leaf_of_one_dense_signed_log(engine, new_event):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from sqlalchemy import select, text

    from casetrail.audit.log import LogMirror
    from casetrail.audit.store import log_leaves, records
    from casetrail.evidence import merkle
    from casetrail.evidence.tree_head import verify_tree_head

    for case_number in range(3):
        opened = new_event(uuid4())
        async with engine.begin() as conn:
            await record_event(conn, opened, ("t", 1, case_number))
            triaged = new_event(opened.subject, "casetrail.case.triaged.v1", opened)
            await record_event(conn, triaged, ("t", 1, 9))

    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(log_leaves.c.leaf_index, log_leaves.c.leaf_hash, records.c.envelope)
                .join(records, records.c.event_id == log_leaves.c.event_id)
                .order_by(log_leaves.c.leaf_index)
            )
        ).all()
    assert [r.leaf_index for r in rows] == list(range(len(rows)))
    assert all(bytes(r.leaf_hash) == merkle.leaf_hash(r.envelope.encode()) for r in rows)

    key = Ed25519PrivateKey.generate()
    mirror = LogMirror(key)
    head = await mirror.sign_if_grown(engine)
    assert head.tree_size == len(rows)
    assert head.root_hash == merkle.root([bytes(r.leaf_hash) for r in rows])
    verify_tree_head(head, key.public_key())
    assert await mirror.sign_if_grown(engine) is None  # nothing new to sign

    for statement in (
        "UPDATE audit_log_leaves SET leaf_hash = 'x'",
        "DELETE FROM audit_tree_heads",
        "TRUNCATE audit_log_leaves",
    ):
        with pytest.raises(Exception, match="append-only"):
            async with engine.begin() as conn:
                await conn.execute(text(statement))


async def test_a_redelivered_batch_records_only_what_is_new(engine, new_event):
    from aiokafka import TopicPartition
    from sqlalchemy import func, select

    from casetrail.audit.handlers import on_event
    from casetrail.audit.store import records
    from casetrail.contracts.events import CaseOpened
    from casetrail.runtime.consumer import (
        Delivery,
        SqlHandler,
        positions_metadata,
        recorded_positions,
    )

    async with engine.begin() as conn:
        await conn.run_sync(positions_metadata.create_all)
    topic = f"batch-{uuid4().hex[:6]}"
    events = [new_event(uuid4()) for _ in range(8)]

    def deliveries(offsets: range) -> list[Delivery]:
        return [Delivery(topic, 0, n, events[n], CaseOpened.model_construct()) for n in offsets]

    handled: list[int] = []

    async def counting(conn, delivery):
        handled.append(delivery.offset)
        await on_event(conn, delivery)

    handler = SqlHandler(engine, "audit-batch-test", counting)
    await handler.handle_batch(deliveries(range(0, 5)))
    await handler.handle_batch(deliveries(range(3, 8)))  # 3 and 4 again, after a rebalance
    await handler.handle_batch(deliveries(range(0, 8)))  # all of it again

    async with engine.connect() as conn:
        recorded = (
            await conn.execute(
                select(func.count()).where(records.c.event_id.in_([e.id for e in events]))
            )
        ).scalar_one()
    assert recorded == 8
    assert handled == list(range(8))  # each offset's effect ran once, redeliveries skipped
    positions = await recorded_positions(engine, "audit-batch-test", [TopicPartition(topic, 0)])
    assert positions == {TopicPartition(topic, 0): 8}


async def test_records_kept_before_the_log_existed_join_it_at_start(engine, new_event):
    from datetime import UTC, datetime

    from sqlalchemy import select

    from casetrail.audit.store import log_leaves, records, set_up_store
    from casetrail.evidence import merkle

    legacy = new_event(uuid4())
    canonical = legacy.to_bytes()
    async with engine.begin() as conn:
        await conn.execute(
            records.insert().values(
                case_id=legacy.subject,
                case_seq=1,
                event_id=legacy.id,
                event_type=legacy.type,
                envelope=canonical.decode(),
                prev_hash="0" * 64,
                hash="f" * 64,
                recorded_at=datetime.now(UTC),
                kafka_topic="t",
                kafka_partition=0,
                kafka_offset=0,
            )
        )
        end = (
            await conn.execute(
                select(log_leaves.c.leaf_index).order_by(log_leaves.c.leaf_index.desc()).limit(1)
            )
        ).scalar()
    async with engine.begin() as conn:
        await set_up_store(conn, "")
    async with engine.begin() as conn:
        await set_up_store(conn, "")  # a second start adds nothing
    async with engine.connect() as conn:
        leaves = (
            await conn.execute(select(log_leaves).where(log_leaves.c.event_id == legacy.id))
        ).all()
    assert len(leaves) == 1
    assert leaves[0].leaf_index == (end + 1 if end is not None else 0)
    assert bytes(leaves[0].leaf_hash) == merkle.leaf_hash(canonical)
