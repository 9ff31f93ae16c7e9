"""The refund policy file's schema, validated when the service starts."""

from __future__ import annotations

import tomllib
from pathlib import Path

from pydantic import Field

from casetrail.runtime.models import Strict

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


class CurrencyLimits(Strict):
    supervisor_review_over_minor: int = Field(ge=0)
    agent_credit_limit_minor: int = Field(ge=0)
    nod_leadership_over_minor: int = Field(ge=0)


class RefundPolicy(Strict):
    version: str = Field(min_length=1)
    refund_window_days: int = Field(ge=1, le=3650)
    currencies: dict[str, CurrencyLimits] = Field(min_length=1)


def load_policy(path: Path | None = None) -> RefundPolicy:
    with (path or DEFAULT_POLICY).open("rb") as file:
        return RefundPolicy.model_validate(tomllib.load(file))
