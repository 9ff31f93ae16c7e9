"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    """Read from `<PREFIX>_*` environment variables (e.g. `TRIAGE_KAFKA_BOOTSTRAP`)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(description="name used in logs, consumer groups, CloudEvents source")
    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = Field(description="postgresql://user:password@host:port/database")
    database_pool_size: int = Field(8, ge=1, le=100)
    policy_file: Path | None = Field(None, description="the service's policy; default ships")
    log_level: str = "INFO"
    relay_poll_seconds: float = Field(0.1, gt=0)
    relay_batch_size: int = Field(500, ge=1)
    consumer_retry_seconds: float = Field(1.0, gt=0)
    # A failpoint for crash tests: SIGKILL the process right after an event's effects are
    # committed to PostgreSQL and before its Kafka offset is committed.
    failpoint_kill_after_handling: bool = False

    @field_validator("database_url")
    @classmethod
    def _postgres_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise ValueError("must look like postgresql://user:password@host:port/database")
        return value

    @property
    def source(self) -> str:
        return f"/casetrail/{self.service_name}"

    @property
    def async_database_url(self) -> str:
        return "postgresql+asyncpg://" + self.database_url.split("://", 1)[1]
