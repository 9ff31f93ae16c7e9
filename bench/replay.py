"""Replay benchmark: events folded per second, beside the raw rate of reading them.

Starts a throw-away PostgreSQL, records a long case and many ordinary ones through audit's
own store (hash chain and Merkle leaves included), then, in the same run:
- reads one long case's stored events (raw), and folds them with the shared `evolve`;
- reads every stored event (raw), and rebuilds every case's state from them.
Prints events per second for each and the ratio of replay to raw reading. Figures only.

    make bench            (BENCH_LONG_CASE=5000 BENCH_CASES=1000 BENCH_EVENTS_PER_CASE=12)
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID, uuid4

import psycopg
from sqlalchemy.ext.asyncio import create_async_engine

from casetrail.audit.store import install_append_only_guard, record_event, tables
from casetrail.contracts import events as ev
from casetrail.contracts.case import fold, state_hash
from casetrail.contracts.envelope import Envelope
from casetrail.runtime.settings import asyncpg_url

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy"))

import infra  # noqa: E402  (deploy/ is scripts, not a package)

T0 = datetime(2026, 11, 2, 9, tzinfo=UTC)


def envelope(payload: ev.EventData, at: datetime) -> Envelope:
    return Envelope(
        id=uuid4(),
        source="/bench",
        type=payload.TYPE,
        time=at,
        subject=payload.case_id,
        correlationid=payload.case_id,
        sequence=1,
        data=payload.model_dump(mode="json"),
    )


def a_case(events: int) -> Iterator[Envelope]:
    """An opening, then customer messages with an agent's worklog entry after every fifth."""
    case_id = uuid4()
    yield envelope(
        ev.CaseOpened(
            case_id=case_id,
            channel=ev.Channel.CHAT,
            customer_ref="acct-bench",
            subject="Charged twice",
            description="My card was charged twice for one order.",
            opened_at=T0,
        ),
        T0,
    )
    for n in range(1, events):
        at = T0 + timedelta(minutes=n)
        if n % 5:
            yield envelope(
                ev.MessageReceived(
                    case_id=case_id,
                    message_id=uuid4(),
                    channel=ev.Channel.CHAT,
                    provider="bench",
                    customer_id=None,
                    body=f"Message {n}: any news on my refund?",
                    received_at=at,
                    continued_by="CONT-OPEN-CASE",
                ),
                at,
            )
        else:
            yield envelope(
                ev.WorklogEntryAdded(
                    case_id=case_id,
                    entry_id=uuid4(),
                    at=at,
                    issue_type="Billing",
                    action="Checked the card processor",
                    outcome="Refund pending",
                    author="agent-1",
                ),
                at,
            )


async def record(database_url: str, cases: list[list[Envelope]]) -> None:
    engine = create_async_engine(asyncpg_url(database_url))
    async with engine.begin() as conn:
        await conn.run_sync(tables.create_all)
        await install_append_only_guard(conn, "")
    offset = 0
    for history in cases:
        for start in range(0, len(history), 1000):
            async with engine.begin() as conn:
                for event in history[start : start + 1000]:
                    offset += 1
                    await record_event(conn, event, ("bench", 0, offset))
    await engine.dispose()


def timed(work) -> tuple[float, object]:
    started = time.perf_counter()
    result = work()
    return time.perf_counter() - started, result


def read_rows(conn: psycopg.Connection, case_id: UUID | None) -> list[tuple[UUID, str]]:
    if case_id is None:
        query, args = "SELECT case_id, envelope FROM audit_records ORDER BY case_id, case_seq", ()
    else:
        query = "SELECT case_id, envelope FROM audit_records WHERE case_id = %s ORDER BY case_seq"
        args = (case_id,)
    return conn.execute(query, args).fetchall()


def replay(rows: list[tuple[UUID, str]]) -> dict[UUID, str]:
    by_case: dict[UUID, list[Envelope]] = defaultdict(list)
    for case_id, raw in rows:
        by_case[case_id].append(Envelope.model_validate_json(raw))
    return {case_id: state_hash(fold(history)) for case_id, history in by_case.items()}


def report(name: str, events: int, raw_seconds: float, replay_seconds: float) -> None:
    raw_rate, replay_rate = events / raw_seconds, events / replay_seconds
    print(
        f"{name:<28} {events:>8} events   raw read {raw_rate:>10,.0f}/s   "
        f"read+fold {replay_rate:>9,.0f}/s   replay/raw {replay_rate / raw_rate:.3f}"
    )


def main() -> None:
    long_events = int(os.environ.get("BENCH_LONG_CASE", "5000"))
    case_count = int(os.environ.get("BENCH_CASES", "1000"))
    per_case = int(os.environ.get("BENCH_EVENTS_PER_CASE", "12"))
    long_case = list(a_case(long_events))
    cases = [long_case] + [list(a_case(per_case)) for _ in range(case_count)]
    total = sum(len(c) for c in cases)
    with tempfile.TemporaryDirectory(prefix="casetrail-bench-") as root:
        Path(root).chmod(0o755)
        postgres = infra.Postgres(Path(root), fast=True)
        try:
            postgres.install()
            postgres.start()
            postgres.ensure_service_database("audit")
            url = postgres.owner_url("audit")
            print(f"recording {total} events ({case_count + 1} cases) through audit's store...")
            seconds, _ = timed(lambda: asyncio.run(record(url, cases)))
            print(f"recorded at {total / seconds:,.0f} events/s (hash chain + Merkle leaf each)")
            long_id = long_case[0].subject
            with psycopg.connect(url) as conn:
                read_rows(conn, None)  # warm the cache: both sides read from memory
                raw_long, rows = timed(lambda: read_rows(conn, long_id))
                fold_long, _ = timed(lambda: replay(rows))
                report("one long case", len(rows), raw_long, raw_long + fold_long)
                raw_all, rows = timed(lambda: read_rows(conn, None))
                fold_all, hashes = timed(lambda: replay(rows))
                name = f"full rebuild ({len(hashes)} cases)"
                report(name, len(rows), raw_all, raw_all + fold_all)
                again = replay(rows)
                print(f"replayed twice, identical state hashes: {again == hashes}")
        finally:
            postgres.stop()


if __name__ == "__main__":
    main()
