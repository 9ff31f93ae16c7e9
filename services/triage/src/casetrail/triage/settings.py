"""Triage's settings, from `TRIAGE_*` environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class TriageSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore", frozen=True)

    service_name: str = "triage"
    shift_check_seconds: float = Field(30.0, gt=0, description="how often shift ends are checked")
