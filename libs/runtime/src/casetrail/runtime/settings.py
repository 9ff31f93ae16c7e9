"""Settings every service shares; each service subclasses with its own env prefix."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from casetrail.runtime.kafka import KafkaConnection, SecurityProtocol
from casetrail.runtime.keyring import Keyring, load_master_key


class ServiceSettings(BaseSettings):
    """Read from `<PREFIX>_*` environment variables (e.g. `TRIAGE_KAFKA_BOOTSTRAP`)."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    service_name: str = Field(description="name used in logs, consumer groups, CloudEvents source")
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: SecurityProtocol = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-256"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ca_file: Path | None = Field(None, description="CA certificate (PEM) of the brokers")
    database_url: str = Field(description="postgresql://user:password@host:port/database")
    schema_database_url: str | None = Field(
        None, description="the schema owner's URL, used only to set up tables at start"
    )
    database_pool_size: int = Field(8, ge=1, le=100)
    policy_file: Path | None = Field(None, description="the service's policy; default ships")
    log_level: str = "INFO"
    max_request_bytes: int = Field(1_048_576, ge=1024, description="larger bodies get 413")
    readiness_poll_seconds: float = Field(1.0, gt=0)
    relay_poll_seconds: float = Field(0.1, gt=0)
    relay_batch_size: int = Field(500, ge=1)
    consumer_retry_seconds: float = Field(1.0, gt=0)
    auth_jwks_url: str | None = Field(None, description="JWKS of the token issuer")
    auth_public_key: str | None = Field(None, description="PEM public key of the issuer")
    auth_shared_secret: SecretStr | None = Field(None, description="dev stack only: HS256")
    keyring_database_url: str | None = Field(
        None, description="the keyring's database: each customer's key for personal fields"
    )
    keyring_master_key_file: Path | None = Field(
        None, description="32 random bytes, base64-encoded: wraps every data key"
    )
    auth_issuer: str = "casetrail-dev"
    auth_audience: str = "casetrail"
    # A failpoint for crash tests: SIGKILL the process right after an event's effects are
    # committed to PostgreSQL and before its Kafka offset is committed.
    failpoint_kill_after_handling: bool = False

    @field_validator("database_url", "schema_database_url", "keyring_database_url")
    @classmethod
    def _postgres_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
            raise ValueError("must look like postgresql://user:password@host:port/database")
        return value

    @model_validator(mode="after")
    def _one_token_key(self) -> ServiceSettings:
        keys = [self.auth_jwks_url, self.auth_public_key, self.auth_shared_secret]
        if sum(key is not None for key in keys) != 1:
            raise ValueError(
                "configure exactly one of auth_jwks_url, auth_public_key, auth_shared_secret"
            )
        secret = self.auth_shared_secret
        if secret is not None and len(secret.get_secret_value()) < 32:
            raise ValueError("auth_shared_secret must be at least 32 characters")
        return self

    @model_validator(mode="after")
    def _sasl_credentials(self) -> ServiceSettings:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError("SASL needs kafka_sasl_username and kafka_sasl_password")
        return self

    @model_validator(mode="after")
    def _whole_keyring(self) -> ServiceSettings:
        if (self.keyring_database_url is None) != (self.keyring_master_key_file is None):
            raise ValueError("configure both keyring_database_url and keyring_master_key_file")
        if self.keyring_master_key_file is not None:
            load_master_key(self.keyring_master_key_file)
        return self

    def keyring(self) -> Keyring:
        """The keyring, for services that seal or read personal data; refuses to start
        without one rather than store personal data in the clear."""
        if self.keyring_database_url is None or self.keyring_master_key_file is None:
            raise ValueError(
                f"{self.service_name} handles personal data: configure keyring_database_url "
                "and keyring_master_key_file"
            )
        return Keyring(self.keyring_database_url, load_master_key(self.keyring_master_key_file))

    @property
    def kafka(self) -> KafkaConnection:
        password = self.kafka_sasl_password
        return KafkaConnection(
            bootstrap=self.kafka_bootstrap,
            security_protocol=self.kafka_security_protocol,
            sasl_mechanism=self.kafka_sasl_mechanism,
            sasl_username=self.kafka_sasl_username,
            sasl_password=password.get_secret_value() if password else None,
            ca_file=str(self.kafka_ca_file) if self.kafka_ca_file else None,
        )

    @property
    def source(self) -> str:
        return f"/casetrail/{self.service_name}"

    @property
    def async_database_url(self) -> str:
        return asyncpg_url(self.database_url)

    @property
    def runtime_role(self) -> str:
        return unquote(urlsplit(self.database_url).username or "")


def asyncpg_url(url: str) -> str:
    return "postgresql+asyncpg://" + url.split("://", 1)[1]
