"""Chaos: steady load through intake while services are SIGKILLed and Kafka and
PostgreSQL restart; then every accepted case must be complete, nothing doubled.

Run against a throw-away stack: `make chaos` (sizes via CHAOS_* variables), or bounded
from the test suite (tests/test_chaos.py).
"""

from __future__ import annotations

import asyncio
import random
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from sla_policies import short_clocks

SERVICES = ("intake", "triage", "sla_timer", "refunds", "audit")
OPENING_EVENTS = Counter(
    {
        "casetrail.case.opened.v1": 1,
        "casetrail.case.triaged.v1": 1,
        "casetrail.case.assigned.v1": 1,
        "casetrail.clock.started.v1": 2,
        # Every clock runs for one minute in a chaos run, so each must breach, exactly once;
        # the resolution clock's breach asks for tier 3, and triage escalates once.
        "casetrail.clock.breached.v1": 2,
        "casetrail.case.escalation_requested.v1": 1,
        "casetrail.case.escalated.v1": 1,
        # Every escalation is reviewed (QA), so sampled once.
        "casetrail.case.qa_sampled.v1": 1,
    }
)
# A small dissatisfaction refund: downgrade, decision, and one payout.
REFUND_EVENTS = Counter(
    {
        "casetrail.refund.requested.v1": 1,
        "casetrail.refund.downgrade_triggered.v1": 1,
        "casetrail.refund.decided.v2": 1,
        "casetrail.refund.issued.v1": 1,
    }
)


@dataclass(frozen=True)
class ChaosPlan:
    cases: int = 600
    rate_per_second: float = 10.0
    service_kills: int = 4
    kafka_restarts: int = 1
    postgres_restarts: int = 1
    refund_every: int = 5  # every n-th case also gets a refund request
    seed: int = 20261123
    settle_seconds: float = 300.0
    work_dir: Path = Path("/tmp")


@dataclass
class ChaosReport:
    accepted: dict[str, str] = field(default_factory=dict)  # idempotency key -> case id
    refunds: dict[str, str] = field(default_factory=dict)  # case id -> refund id
    refused_attempts: int = 0
    kills: int = 0
    kafka_restarts: int = 0
    postgres_restarts: int = 0
    lost: list[str] = field(default_factory=list)
    duplicated: list[str] = field(default_factory=list)
    broken_chains: list[str] = field(default_factory=list)

    def figures(self) -> str:
        return (
            f"cases accepted: {len(self.accepted)}, refunds accepted: {len(self.refunds)}, "
            f"refused attempts retried: {self.refused_attempts}, kills: {self.kills}, "
            f"kafka restarts: {self.kafka_restarts}, postgres restarts: {self.postgres_restarts}, "
            f"lost: {len(self.lost)}, duplicated: {len(self.duplicated)}, "
            f"broken chains: {len(self.broken_chains)}"
        )


async def _until_accepted(
    http: httpx.AsyncClient, stack: Any, report: ChaosReport, send: Any, deadline: float
) -> httpx.Response | None:
    """Retries one request (same Idempotency-Key) until it is accepted or time runs out."""
    while time.monotonic() < deadline:
        try:
            response = await send(http)
            if response.status_code == 202:
                return response
            report.refused_attempts += 1
        except (httpx.HTTPError, OSError, KeyError):
            report.refused_attempts += 1  # the service is restarting on another port
        await asyncio.sleep(0.5)
    return None


async def _open_case(
    http: httpx.AsyncClient, stack: Any, plan: ChaosPlan, report: ChaosReport, n: int, run: str
) -> None:
    key = f"chaos-{run}-{n}"
    body = {
        "channel": ("email", "chat", "phone", "web", "regulatory")[n % 5],
        "customer_ref": f"chaos-{n % 97}",
        "subject": ("Payment failed", "Question", "Locked out", "Fraud alert", "Fees")[n % 5],
        "description": f"Chaos complaint {n}",
    }

    async def send(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            f"{stack.service_url('intake')}/v1/cases",
            json=body,
            headers=stack.auth_headers("channel") | {"Idempotency-Key": key},
        )

    deadline = time.monotonic() + plan.settle_seconds
    accepted = await _until_accepted(http, stack, report, send, deadline)
    if accepted is None:
        return
    case_id = accepted.json()["case_id"]
    report.accepted[key] = case_id
    if n % plan.refund_every:
        return
    refund = {
        "amount": {"amount_minor": 1_500 + n, "currency": "USD"},
        "reason": "not_satisfied",
        "usage": {"logged_in": False, "reports_pulled": False, "build_it_used": False},
        "charged_at": (datetime.now(UTC) - timedelta(days=3)).isoformat(),
    }

    async def request_refund(client: httpx.AsyncClient) -> httpx.Response:
        return await client.post(
            f"{stack.service_url('refunds')}/v1/cases/{case_id}/refunds",
            json=refund,
            headers=stack.auth_headers("agent") | {"Idempotency-Key": f"{key}-refund"},
        )

    decided = await _until_accepted(http, stack, report, request_refund, deadline)
    if decided is not None:
        report.refunds[case_id] = decided.json()["refund_id"]


async def _load(stack: Any, plan: ChaosPlan, report: ChaosReport, run: str) -> None:
    async with httpx.AsyncClient(timeout=10) as http:
        tasks = []
        for n in range(plan.cases):
            tasks.append(asyncio.create_task(_open_case(http, stack, plan, report, n, run)))
            await asyncio.sleep(1 / plan.rate_per_second)
        await asyncio.gather(*tasks)


def one_minute_clocks(work_dir: Path) -> dict[str, dict[str, str]]:
    """The SLA timer's environment for a chaos run: two one-minute clocks a case."""
    return {
        "sla_timer": {
            "SLA_TIMER_POLICY_FILE": str(short_clocks(work_dir, name="chaos")),
            "SLA_TIMER_SCHEDULER_POLL_SECONDS": "0.5",
        }
    }


async def _faults(
    stack: Any,
    plan: ChaosPlan,
    report: ChaosReport,
    rng: random.Random,
    service_env: dict[str, dict[str, str]],
) -> None:
    faults = (
        ["kill"] * plan.service_kills
        + ["kafka"] * plan.kafka_restarts
        + ["postgres"] * plan.postgres_restarts
    )
    rng.shuffle(faults)
    # Every service dies in turn before any dies twice.
    victims = [service for _ in range(plan.service_kills) for service in rng.sample(SERVICES, 5)]
    spacing = plan.cases / plan.rate_per_second / (len(faults) + 1)
    for fault in faults:
        await asyncio.sleep(spacing)
        if fault == "kill":
            victim = victims.pop(0)
            await asyncio.to_thread(stack.kill_service, victim)
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await asyncio.to_thread(stack.start_service, victim, service_env.get(victim), False)
            report.kills += 1
            print(f"[chaos] killed and restarted {victim}", file=sys.stderr, flush=True)
        elif fault == "kafka":
            await asyncio.to_thread(stack.kafka.restart)
            report.kafka_restarts += 1
            print("[chaos] restarted Kafka", file=sys.stderr, flush=True)
        else:
            await asyncio.to_thread(stack.postgres.stop)
            await asyncio.sleep(rng.uniform(0.5, 2.0))
            await asyncio.to_thread(stack.postgres.start)
            report.postgres_restarts += 1
            print("[chaos] restarted PostgreSQL", file=sys.stderr, flush=True)


async def _settle_and_check(stack: Any, plan: ChaosPlan, report: ChaosReport) -> None:
    for service in SERVICES:
        await asyncio.to_thread(stack.wait_service_ready, service, 180)
    expected = {
        case_id: OPENING_EVENTS + (REFUND_EVENTS if case_id in report.refunds else Counter())
        for case_id in report.accepted.values()
    }
    found: dict[str, Counter[str]] = {}
    deadline = time.monotonic() + plan.settle_seconds
    auditor = stack.auth_headers("auditor")
    async with httpx.AsyncClient(timeout=20) as http:
        pending = set(expected)
        while pending and time.monotonic() < deadline:
            for case_id in list(pending):
                response = await http.get(
                    f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
                    params={"limit": 1000},
                    headers=auditor,
                )
                if response.status_code == 200:
                    found[case_id] = Counter(r["type"] for r in response.json()["records"])
                    if found[case_id] == expected[case_id]:
                        pending.discard(case_id)
            if pending:
                await asyncio.sleep(2)
        for case_id, wanted in expected.items():
            got = found.get(case_id, Counter())
            if any(count > wanted[kind] for kind, count in got.items()):
                report.duplicated.append(case_id)
            elif got != wanted:
                report.lost.append(case_id)
            verdict = await http.get(
                f"{stack.service_url('audit')}/v1/cases/{case_id}/verify", headers=auditor
            )
            if verdict.status_code != 200 or not verdict.json()["valid"]:
                report.broken_chains.append(case_id)


async def run_chaos(stack: Any, plan: ChaosPlan) -> ChaosReport:
    rng = random.Random(plan.seed)
    report = ChaosReport()
    run = f"{plan.seed}-{int(time.time())}"
    service_env = one_minute_clocks(plan.work_dir)
    await asyncio.to_thread(stack.stop_service, "sla_timer")
    await asyncio.to_thread(stack.start_service, "sla_timer", service_env["sla_timer"])
    try:
        await asyncio.gather(
            _load(stack, plan, report, run), _faults(stack, plan, report, rng, service_env)
        )
        await _settle_and_check(stack, plan, report)
    finally:
        await asyncio.to_thread(stack.stop_service, "sla_timer")
        await asyncio.to_thread(stack.start_service, "sla_timer")
    print(f"[chaos] {report.figures()}", file=sys.stderr, flush=True)
    return report


def main() -> int:
    import importlib.util
    import os
    import tempfile

    repo = Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("casetrail_infra", repo / "deploy" / "infra.py")
    assert spec and spec.loader
    infra = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(infra)
    root = Path(tempfile.mkdtemp(prefix="casetrail-chaos-"))
    root.chmod(0o755)
    plan = ChaosPlan(
        cases=int(os.environ.get("CHAOS_CASES", "3000")),
        rate_per_second=float(os.environ.get("CHAOS_RATE", "25")),
        service_kills=int(os.environ.get("CHAOS_KILLS", "10")),
        kafka_restarts=int(os.environ.get("CHAOS_KAFKA_RESTARTS", "3")),
        postgres_restarts=int(os.environ.get("CHAOS_POSTGRES_RESTARTS", "3")),
        work_dir=root,
    )
    stack = infra.Stack(root, fast=False)
    try:
        stack.up()
        report = asyncio.run(run_chaos(stack, plan))
    finally:
        stack.down()
    print(report.figures())
    ok = not (report.lost or report.duplicated or report.broken_chains)
    print(f"{1 if ok else 0} passed, {0 if ok else 1} failed")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
