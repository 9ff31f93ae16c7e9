"""The intake policy file's schema, validated when the service starts."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

from pydantic import Field, field_validator

from casetrail.contracts.events import Channel, ContactKind
from casetrail.runtime.models import Strict

DEFAULT_POLICY = Path(__file__).with_name("policy.toml")


class AttachmentPolicy(Strict):
    max_bytes: int = Field(ge=1)
    max_per_message: int = Field(ge=0)
    media_types: tuple[str, ...] = Field(min_length=1)

    def accepts(self, media_type: str) -> bool:
        return any(fnmatch.fnmatchcase(media_type.lower(), p) for p in self.media_types)


class IntakePolicy(Strict):
    version: str = Field(min_length=1)
    continue_open_case_within_days: int = Field(ge=0)
    reference_prefix: str = Field(pattern=r"^[A-Z]{2,6}$")
    attachments: AttachmentPolicy
    channel_contacts: dict[Channel, tuple[ContactKind, ...]]

    @field_validator("channel_contacts")
    @classmethod
    def _not_empty(
        cls, value: dict[Channel, tuple[ContactKind, ...]]
    ) -> dict[Channel, tuple[ContactKind, ...]]:
        empty = [channel.value for channel, kinds in value.items() if not kinds]
        if empty:
            raise ValueError(f"channels {empty} list no contact kind")
        return value


def load_policy(path: Path | None = None) -> IntakePolicy:
    with (path or DEFAULT_POLICY).open("rb") as file:
        return IntakePolicy.model_validate(tomllib.load(file))
