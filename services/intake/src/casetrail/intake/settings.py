"""Intake's settings, from `INTAKE_*` environment variables."""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class IntakeSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", extra="ignore", frozen=True)

    service_name: str = "intake"
    # E-mail with attachments and regulator batches are large; each attachment has its own
    # limit in the policy.
    max_request_bytes: int = Field(32 * 1_048_576, ge=1024)
    attachment_dir: Path | None = Field(
        None, description="keep attachment content in files here instead of PostgreSQL"
    )
    public_base_url: str | None = Field(
        None,
        description="the URL providers call (behind a proxy); Twilio signs the full URL",
    )
    twilio_auth_token: SecretStr | None = None
    meta_app_secret: SecretStr | None = None
    meta_verify_token: SecretStr | None = None
    sendgrid_inbound_username: str | None = None
    sendgrid_inbound_password: SecretStr | None = None
