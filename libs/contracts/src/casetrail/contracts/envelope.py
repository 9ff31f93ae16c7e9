"""The CloudEvents 1.0 envelope every Casetrail event travels in, and its Kafka binding.

On Kafka we use the CloudEvents *structured* content mode: the record value is the whole
envelope as JSON (`content-type: application/cloudevents+json` header) and the record key
is the case id, so all events of one case keep their order on one partition.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

SPEC_VERSION = "1.0"
STRUCTURED_CONTENT_TYPE = "application/cloudevents+json"


def canonical_json(value: Any) -> bytes:
    """The one byte form of a JSON value: sorted keys, no spaces, UTF-8.

    Hashes and idempotency fingerprints are taken over these bytes, so two parties that
    agree on the value agree on the bytes.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def fingerprint(value: Any) -> str:
    """SHA-256 of the canonical bytes: tells a retried request from a different one."""
    return hashlib.sha256(canonical_json(value)).hexdigest()


class Envelope(BaseModel):
    """CloudEvents attributes plus Casetrail's tracing extensions."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: UUID
    source: str = Field(min_length=1, description="URI-reference of the emitting service")
    type: str = Field(min_length=1, description="event type with its version, e.g. ...v1")
    specversion: str = SPEC_VERSION
    time: AwareDatetime
    subject: UUID = Field(description="the case id, or the customer id for their record")
    datacontenttype: str = "application/json"
    correlationid: UUID = Field(description="the case's correlation: its first event's id")
    causationid: UUID | None = Field(None, description="the event that caused this one")
    sequence: int = Field(ge=1, description="position in the emitting service's case stream")
    data: dict[str, Any]

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def to_bytes(self) -> bytes:
        return canonical_json(self.to_json_dict())

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        return cls.model_validate_json(raw)

    def kafka_headers(self) -> list[tuple[str, bytes]]:
        return [
            ("content-type", STRUCTURED_CONTENT_TYPE.encode()),
            ("ce_type", self.type.encode()),
            ("ce_id", str(self.id).encode()),
        ]
