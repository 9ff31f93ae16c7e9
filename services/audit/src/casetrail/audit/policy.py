"""Audit's policy file: how long records are kept. Validated when the service starts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field

from casetrail.runtime.models import Strict

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


class RetentionPolicy(Strict):
    # Regulators set minimums (FCA DISP 1.9: three years); shorter would breach them.
    years_after_closure: int = Field(ge=3, le=100)
    closing_statuses: tuple[str, ...] = Field(min_length=1)


class AuditPolicy(Strict):
    version: str = Field(min_length=1)
    retention: RetentionPolicy


def load_policy(path: Path | None = None) -> AuditPolicy:
    with (path or DEFAULT_POLICY).open("rb") as file:
        return AuditPolicy.model_validate(tomllib.load(file))
