"""Audit's settings, from `AUDIT_*` environment variables."""

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from casetrail.runtime.settings import ServiceSettings


class AuditSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="AUDIT_", extra="ignore", frozen=True)

    service_name: str = "audit"
    # Another group reads every topic again from its first offset (a rebuild) without
    # taking partitions from the live one.
    consumer_group: str = Field("audit", min_length=1, max_length=200)
    signing_key_file: Path = Field(
        description="Ed25519 private key (PEM) that signs tree heads and evidence bundles"
    )
    tree_head_seconds: float = Field(
        30.0, gt=0, description="how often a signed tree head is published when the log grew"
    )
