"""Scaling out: two triage replicas share one consumer group; stopping one loses nothing."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.e2e

GROUP_PARTITIONS = 12
PARTITIONS_OWNED = re.compile(r'^casetrail_partitions_assigned\{group="triage"\} (\S+)$', re.M)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Replica:
    """A second triage process, started the way an operator would add one."""

    def __init__(self, stack: Any, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **stack.service_env("triage"), "PYTHONUNBUFFERED": "1"}
        self.log = log_path.open("ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "casetrail.triage.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=60)
        self.log.close()


def partitions_owned(stack: Any, url: str) -> int:
    try:
        text = httpx.get(f"{url}/metrics", headers=stack.auth_headers("ops"), timeout=5).text
    except httpx.HTTPError:
        return -1
    found = PARTITIONS_OWNED.search(text)
    return int(float(found.group(1))) if found else 0


def open_cases(stack: Any, count: int, label: str) -> list[str]:
    ids = []
    for number in range(count):
        response = httpx.post(
            f"{stack.service_url('intake')}/v1/cases",
            json={
                "channel": "web",
                "customer_ref": f"acct-{uuid.uuid4()}",
                "subject": f"{label} {number}",
                "description": "Please look at my statement.",
            },
            headers=stack.auth_headers("channel"),
        )
        assert response.status_code == 202, response.text
        ids.append(response.json()["case_id"])
    return ids


def triage_counts(stack: Any, case_id: str) -> Counter[str]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
        params={"limit": 1000},
        headers=stack.auth_headers("auditor"),
    )
    records = response.json().get("records", []) if response.status_code == 200 else []
    return Counter(
        r["type"]
        for r in records
        if r["type"].startswith("casetrail.case.tri") or r["type"] == "casetrail.case.assigned.v1"
    )


def each_triaged_exactly_once(stack: Any, case_ids: list[str]) -> bool:
    wanted = Counter({"casetrail.case.triaged.v1": 1, "casetrail.case.assigned.v1": 1})
    return all(triage_counts(stack, case_id) == wanted for case_id in case_ids)


def test_two_replicas_share_partitions_and_a_stopped_one_hands_over(stack, tmp_path, wait_for):
    first = stack.service_url("triage")
    second = Replica(stack, tmp_path / "triage-2.log")
    try:
        # Triage's twelve partitions (six of intake's topic, six of the SLA timer's), split
        # between the two members of the group.
        shared = wait_for(
            lambda: (
                (owned := (partitions_owned(stack, first), partitions_owned(stack, second.url)))
                and min(owned) > 0
                and sum(owned) == GROUP_PARTITIONS
                and owned
            ),
            timeout=90,
        )
        assert sorted(shared) == [GROUP_PARTITIONS // 2] * 2
        before = open_cases(stack, 40, "shared")
        wait_for(lambda: each_triaged_exactly_once(stack, before), timeout=90)

        during = open_cases(stack, 20, "handover")
        second.stop()  # mid-stream: its partitions go to the first replica
        after = open_cases(stack, 20, "alone")
        wait_for(lambda: partitions_owned(stack, first) == GROUP_PARTITIONS, timeout=90)
        wait_for(lambda: each_triaged_exactly_once(stack, during + after), timeout=120)
        time.sleep(2)  # anything doubled would have arrived by now
        assert each_triaged_exactly_once(stack, before + during + after)
    finally:
        second.stop()
