"""Intake's settings, from `INTAKE_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    service_name: str = "intake"
