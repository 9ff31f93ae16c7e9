"""The refund policy file's schema, validated when the service starts."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated

from pydantic import Field, model_validator

from casetrail.runtime.models import Strict

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")

# The same shape `Money` accepts: a key any other spelling of would never be looked up.
CurrencyCode = Annotated[str, Field(pattern=r"^[A-Z]{3}$")]


class CurrencyLimits(Strict):
    supervisor_review_over_minor: int = Field(ge=0)
    agent_credit_limit_minor: int = Field(ge=0)
    nod_leadership_over_minor: int = Field(ge=0)


class RefundPolicy(Strict):
    version: str = Field(min_length=1)
    refund_window_days: int = Field(ge=1, le=3650)
    # Required, with no default in code: a company's playbook states its own windows, and
    # a file written before they existed fails at start rather than decide on our numbers.
    chargeback_window_days: int = Field(ge=1, le=3650)
    dispute_investigation_days: int = Field(ge=1, le=3650)
    currencies: dict[CurrencyCode, CurrencyLimits] = Field(min_length=1)

    @model_validator(mode="after")
    def _windows_nest(self) -> RefundPolicy:
        # Past the refund window lies the chargeback window; the other way round would
        # send in-window requests to a dispute.
        if self.chargeback_window_days < self.refund_window_days:
            raise ValueError("chargeback_window_days must not be shorter than refund_window_days")
        return self


def load_policy(path: Path | None = None) -> RefundPolicy:
    with (path or DEFAULT_POLICY).open("rb") as file:
        return RefundPolicy.model_validate(tomllib.load(file))
