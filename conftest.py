"""Test fixtures: a real, throw-away PostgreSQL + Kafka + five-service stack.

Unit tests never ask for it; the first integration or end-to-end test that does starts it
once for the session (under a temporary directory) and stops it at the end.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

REPO = Path(__file__).resolve().parent
T = TypeVar("T")
# The cross-service tests share helpers (chaos runs, short SLA policies) as plain modules.
sys.path.insert(0, str(REPO / "tests"))


def _load_infra() -> Any:
    spec = importlib.util.spec_from_file_location("casetrail_infra", REPO / "deploy" / "infra.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["casetrail_infra"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real third-party data the project tests against, kept outside the repository."""
    candidates = [
        os.environ.get("CASETRAIL_SHARED_DATA"),
        REPO.parent / "shared" / "data",
        "/work/shared/data",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "cfpb").is_dir():
            return Path(candidate)
    pytest.fail("shared test data not found: set CASETRAIL_SHARED_DATA to its folder")


@pytest.fixture(scope="session")
def infra() -> Any:
    return _load_infra()


@pytest.fixture(scope="session")
def stack(infra: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    root = Path(os.environ.get("CASETRAIL_TEST_ROOT") or tmp_path_factory.mktemp("stack"))
    # PostgreSQL's own user must reach its data directory under the test's temp folder.
    for parent in [root, *root.parents]:
        if parent == Path("/"):
            break
        parent.chmod(parent.stat().st_mode | 0o711)
    running = infra.Stack(root, fast=True)
    try:
        running.up()
        yield running
    finally:
        running.down()


def eventually(probe: Callable[[], T | None], timeout: float = 60.0, every: float = 0.25) -> T:
    """Polls until `probe` returns something truthy; fails with the last value after timeout."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout}s; last value: {last!r}")


@pytest.fixture(scope="session")
def wait_for() -> Callable[..., Any]:
    return eventually
