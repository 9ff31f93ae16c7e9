"""The refunds service's settings, from `REFUNDS_*` environment variables."""

from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class RefundsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="REFUNDS_", extra="ignore", frozen=True)

    service_name: str = "refunds"
