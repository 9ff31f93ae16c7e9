"""A bounded chaos run in the test suite; `make chaos` runs a larger one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e


def _chaos_module():
    spec = importlib.util.spec_from_file_location("chaos", Path(__file__).with_name("chaos.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules["chaos"] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


async def test_killing_and_restarting_under_load_loses_and_doubles_nothing(stack, tmp_path):
    chaos = _chaos_module()
    plan = chaos.ChaosPlan(
        cases=300,
        rate_per_second=8,
        service_kills=5,
        kafka_restarts=1,
        postgres_restarts=1,
        work_dir=tmp_path,
    )
    report = await chaos.run_chaos(stack, plan)
    print(report.figures())
    assert len(report.accepted) == plan.cases
    assert report.kills == 5 and report.kafka_restarts == 1 and report.postgres_restarts == 1
    assert report.lost == []
    assert report.duplicated == []
    assert report.broken_chains == []
