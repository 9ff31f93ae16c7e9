"""Intake benchmark: messages accepted per second and latency, beside raw PostgreSQL.

Starts a throw-away stack, measures this machine's raw PostgreSQL insert rate (one row per
committed transaction, the same durability intake gives each message), then posts
messages to the generic channel API from concurrent clients and prints both, and their
ratio. Figures only: nothing here passes or fails.

    make bench                      (BENCH_MESSAGES=2000 BENCH_CONCURRENCY=16 by default)
"""

from __future__ import annotations

import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "deploy"))

import infra  # noqa: E402  (deploy/ is scripts, not a package)


def raw_insert_rate(database_url: str, rows: int) -> float:
    """Rows per second, each INSERT its own committed transaction, from one connection."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TEMP TABLE bench_rows (id uuid PRIMARY KEY, body text)")
        started = time.perf_counter()
        for _ in range(rows):
            conn.execute("INSERT INTO bench_rows VALUES (%s, %s)", (uuid.uuid4(), "x" * 200))
        return rows / (time.perf_counter() - started)


async def post_messages(url: str, token: str, count: int, concurrency: int) -> list[float]:
    latencies: list[float] = []
    queue: asyncio.Queue[int] = asyncio.Queue()
    for number in range(count):
        queue.put_nowait(number)
    headers = {"Authorization": f"Bearer {token}"}

    async def client(http: httpx.AsyncClient) -> None:
        while not queue.empty():
            number = queue.get_nowait()
            body = {
                "customer": {"phone": f"+1415{number:07d}"},
                "body": f"Bench message {number}: my payment failed",
                "provider_message_id": f"bench-{uuid.uuid4()}",
            }
            started = time.perf_counter()
            response = await http.post(url, json=body, headers=headers)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise RuntimeError(f"{response.status_code}: {response.text}")

    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(client(http) for _ in range(concurrency)))
    return latencies


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> None:
    messages = int(os.environ.get("BENCH_MESSAGES", "2000"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    with tempfile.TemporaryDirectory(prefix="casetrail-bench-") as root:
        Path(root).chmod(0o755)
        stack = infra.Stack(Path(root), fast=True)
        try:
            stack.up()
            raw_rate = raw_insert_rate(stack.postgres.owner_url("intake"), messages)
            url = f"{stack.service_url('intake')}/v1/channels/sms/messages"
            token = stack.token("channel")
            asyncio.run(post_messages(url, token, min(100, messages), concurrency))  # warm-up
            started = time.perf_counter()
            latencies = asyncio.run(post_messages(url, token, messages, concurrency))
            elapsed = time.perf_counter() - started
        finally:
            stack.down()
    accepted = messages / elapsed
    print(f"intake benchmark: {messages} messages, {concurrency} concurrent clients")
    print(f"  raw PostgreSQL inserts (1 row/commit)  {raw_rate:9.0f} /s")
    print(f"  intake messages accepted               {accepted:9.0f} /s")
    print(f"  ratio intake / raw inserts             {accepted / raw_rate:9.2f}")
    print(f"  latency p50                            {statistics.median(latencies) * 1000:9.1f} ms")
    print(f"  latency p99                            {percentile(latencies, 0.99) * 1000:9.1f} ms")


if __name__ == "__main__":
    main()
