"""Triage's settings, from `TRIAGE_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class TriageSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="TRIAGE_", extra="ignore", frozen=True)

    service_name: str = "triage"
