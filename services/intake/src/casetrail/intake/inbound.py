"""One shape for a message from any channel, whatever format its provider delivered it in.

Provider adapters (webhooks, e-mail, regulator batches, the generic API) translate into
`InboundMessage`; everything after that (which case it belongs to, which events it
records) is the same for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from casetrail.contracts.events import Channel, ContactKind


@dataclass(frozen=True)
class Contact:
    """A way to reach the customer, normalised so the same address always compares equal.

    e-mail: lower-cased addr-spec; phone and whatsapp: E.164 (`+14155550100`).
    """

    kind: ContactKind
    value: str

    @classmethod
    def normalised(cls, kind: ContactKind, value: str) -> Contact:
        """Addresses compare case-insensitively; numbers and account ids as given."""
        value = value.strip()
        return cls(kind, value.lower() if kind in ("email", "social") else value)


@dataclass(frozen=True)
class InboundAttachment:
    filename: str
    media_type: str
    content: bytes


@dataclass(frozen=True)
class MediaLink:
    """Media the provider hosts and we only point at (Twilio and Meta media URLs)."""

    url: str
    media_type: str


@dataclass(frozen=True)
class Thread:
    """RFC 5322 threading: a reply names the message ids it answers."""

    message_id: str | None = None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()

    @property
    def earlier_ids(self) -> tuple[str, ...]:
        ids = [*self.references, *([self.in_reply_to] if self.in_reply_to else [])]
        return tuple(dict.fromkeys(ids))


@dataclass(frozen=True)
class InboundMessage:
    channel: Channel
    provider: str
    provider_message_id: str | None
    sender: Contact | None
    sender_name: str | None
    subject: str | None
    body: str
    sent_at: datetime | None = None
    thread: Thread = field(default_factory=Thread)
    attachments: tuple[InboundAttachment, ...] = ()
    media: tuple[MediaLink, ...] = ()
    source_details: dict[str, Any] = field(default_factory=dict)
