"""Every service's OpenAPI, fuzzed with schemathesis: no 5xx, no response off its schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from casetrail.contracts.access import Role

pytestmark = pytest.mark.e2e

SERVICES = ("intake", "triage", "sla_timer", "refunds", "audit")
EXAMPLES_PER_OPERATION = 25
HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("service", SERVICES)
def test_fuzzing_finds_no_server_error_and_no_schema_violation(stack, service, tmp_path):
    every_role = stack.token(*(role.value for role in Role))
    schemathesis = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [
            str(schemathesis),
            "run",
            f"{stack.service_url(service)}/openapi.json",
            "--checks",
            "not_a_server_error,response_schema_conformance",
            "--header",
            f"Authorization: Bearer {every_role}",
            "--max-examples",
            str(EXAMPLES_PER_OPERATION),
            "--seed",
            "20261123",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "fuzz_hooks", "PYTHONPATH": str(HERE)},
        check=False,
    )
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
