"""Audit's settings, from `AUDIT_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", frozen=True)

    service_name: str = "audit"
