"""The SLA timer's settings, from `SLA_TIMER_*` environment variables."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class SlaTimerSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="SLA_TIMER_", extra="ignore", frozen=True)

    service_name: str = "sla-timer"
    scheduler_poll_seconds: float = Field(1.0, gt=0)
    scheduler_batch_size: int = Field(100, ge=1)
    scheduler_lease_seconds: float = Field(30.0, gt=0)
