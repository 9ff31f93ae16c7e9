"""Twilio and Meta (WhatsApp Cloud API) webhooks: signature checks and `InboundMessage`s."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qs, urlparse

from twilio.request_validator import RequestValidator

from casetrail.contracts.events import Channel
from casetrail.intake.inbound import Contact, InboundMessage, MediaLink, Thread

NO_TEXT = "(no text)"
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_PUNCTUATION = re.compile(r"[\s().-]")
_META_SIGNATURE = re.compile(r"^sha256=([0-9a-fA-F]{64})$")
_META_MEDIA_KINDS = frozenset({"image", "video", "audio", "document", "sticker"})


class WebhookFormatError(ValueError):
    """A webhook payload whose structure is not what the provider documents."""


class _MultiParams(dict[str, list[str]]):
    """Repeated form fields in the shape RequestValidator reads through `getlist`."""

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> _MultiParams:
        params = cls()
        for name, value in pairs:
            params.setdefault(name, []).append(value)
        return params

    def getlist(self, name: str) -> list[str]:
        return self[name]


def verify_twilio(
    auth_token: str,
    url: str,
    params: Mapping[str, str] | list[tuple[str, str]] | None,
    signature: str | None,
    *,
    raw_json_body: bytes | None = None,
) -> bool:
    """Checks `X-Twilio-Signature` for a form-encoded or (with `raw_json_body`) a JSON webhook.

    `url` is the full URL Twilio requested, query string included. A form with repeated fields
    must come as a list of pairs or a multidict (`getlist`/`getall`): a dict keeps one value.
    """
    if not signature or not auth_token:
        return False
    validator = RequestValidator(auth_token)
    if raw_json_body is not None:
        if params:
            raise ValueError("pass either form params or raw_json_body, not both")
        return _verify_twilio_json(validator, url, raw_json_body, signature)
    form = _MultiParams.of(params) if isinstance(params, list) else params
    return bool(validator.validate(url, form or {}, signature))


def _verify_twilio_json(
    validator: RequestValidator, url: str, raw_body: bytes, signature: str
) -> bool:
    # Without bodySHA256 the body is not covered by the signature at all, so refuse it.
    if "bodySHA256" not in parse_qs(urlparse(url).query):
        return False
    try:
        body = raw_body.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return bool(validator.validate(url, body, signature))


def verify_meta(app_secret: str, raw_body: bytes, header: str | None) -> bool:
    """Checks `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app_secret, raw body)>`."""
    if not app_secret or not header:
        return False
    match = _META_SIGNATURE.match(header.strip())
    if not match:
        return False
    expected = hmac.new(app_secret.encode("utf-8"), raw_body, hashlib.sha256).digest()
    return hmac.compare_digest(expected, bytes.fromhex(match.group(1)))


def meta_verification_challenge(params: Mapping[str, str], verify_token: str) -> str | None:
    """The `hub.challenge` to echo for Meta's subscription handshake, or None to refuse it."""
    if not verify_token or params.get("hub.mode") != "subscribe":
        return None
    offered = params.get("hub.verify_token") or ""
    if not hmac.compare_digest(offered.encode("utf-8"), verify_token.encode("utf-8")):
        return None
    return params.get("hub.challenge") or None


def twilio_message(form: Mapping[str, str]) -> InboundMessage:
    """Translates a Twilio Messaging webhook (SMS or WhatsApp) into an `InboundMessage`."""
    sid = _required_form_field(form, "MessageSid")
    sender = _required_form_field(form, "From")
    scheme, _, address = sender.rpartition(":")
    if scheme not in ("", "whatsapp"):
        raise WebhookFormatError(f"Twilio webhook: unsupported channel {scheme!r} in From")
    whatsapp = scheme == "whatsapp"
    media = _twilio_media(form)
    details = {
        "from": sender,
        "to": form.get("To"),
        "account_sid": form.get("AccountSid"),
        "messaging_service_sid": form.get("MessagingServiceSid"),
    }
    return InboundMessage(
        channel=Channel.WHATSAPP if whatsapp else Channel.SMS,
        provider="twilio",
        provider_message_id=sid,
        sender=_phone_contact("whatsapp" if whatsapp else "phone", address),
        sender_name=(form.get("ProfileName") or None) if whatsapp else None,
        subject=None,
        body=_body_or_placeholder(form.get("Body"), media),
        thread=Thread(message_id=sid, in_reply_to=form.get("OriginalRepliedMessageSid") or None),
        media=media,
        source_details={key: value for key, value in details.items() if value},
    )


def _required_form_field(form: Mapping[str, str], name: str) -> str:
    value = (form.get(name) or "").strip()
    if not value:
        raise WebhookFormatError(f"Twilio webhook: missing {name}")
    return value


def _twilio_media(form: Mapping[str, str]) -> tuple[MediaLink, ...]:
    try:
        count = int(form.get("NumMedia") or 0)
    except ValueError:
        raise WebhookFormatError("Twilio webhook: NumMedia is not a number") from None
    links = []
    for index in range(count):
        url = form.get(f"MediaUrl{index}")
        if not url:
            raise WebhookFormatError(f"Twilio webhook: NumMedia={count} but no MediaUrl{index}")
        links.append(MediaLink(url, _bare_media_type(form.get(f"MediaContentType{index}"))))
    return tuple(links)


def _phone_contact(kind: Literal["phone", "whatsapp"], address: str) -> Contact | None:
    # Short codes and alphanumeric sender ids are not E.164; keep the message, not the sender.
    number = _PHONE_PUNCTUATION.sub("", address)
    return Contact(kind, number) if _E164.match(number) else None


def _bare_media_type(value: str | None) -> str:
    # Parameters such as `; codecs=opus` do not fit the media types events carry.
    bare = (value or "").split(";", 1)[0].strip().lower()
    return bare if "/" in bare else "application/octet-stream"


def _body_or_placeholder(text: str | None, media: tuple[MediaLink, ...]) -> str:
    if text and text.strip():
        return text
    if media:
        return f"[{media[0].media_type.split('/', 1)[0]}]"
    return NO_TEXT


def meta_messages(payload: dict[str, Any]) -> list[InboundMessage]:
    """Translates a WhatsApp Cloud API webhook into its messages; status updates yield none."""
    if not isinstance(payload, dict) or payload.get("object") != "whatsapp_business_account":
        found = payload.get("object") if isinstance(payload, dict) else type(payload).__name__
        raise WebhookFormatError(
            f"Meta webhook: expected object 'whatsapp_business_account', got {found!r}"
        )
    messages: list[InboundMessage] = []
    for entry in _list_of_dicts(payload.get("entry"), "entry"):
        for change in _list_of_dicts(entry.get("changes", []), "entry[].changes"):
            if change.get("field", "messages") == "messages":
                messages.extend(_meta_change_messages(change.get("value")))
    return messages


def _list_of_dicts(value: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise WebhookFormatError(f"Meta webhook: {where} must be a list of objects")
    return value


def _meta_change_messages(value: Any) -> list[InboundMessage]:
    if not isinstance(value, dict):
        raise WebhookFormatError("Meta webhook: entry[].changes[].value must be an object")
    names = {
        contact.get("wa_id"): (contact.get("profile") or {}).get("name")
        for contact in _list_of_dicts(value.get("contacts", []), "value.contacts")
    }
    metadata = value.get("metadata") or {}
    return [
        _meta_message(message, names, metadata)
        for message in _list_of_dicts(value.get("messages", []), "value.messages")
    ]


def _meta_message(
    message: dict[str, Any], names: Mapping[str | None, str | None], metadata: Mapping[str, Any]
) -> InboundMessage:
    message_id = _required_meta_field(message, "id")
    sender = _required_meta_field(message, "from")
    if not (sender.isascii() and sender.isdigit()):
        raise WebhookFormatError(f"Meta webhook: message from {sender!r} is not a phone number")
    kind = str(message.get("type") or "unknown")
    body, media, extra = _meta_content(kind, message)
    context = message.get("context") or {}
    details = {
        "type": kind,
        "phone_number_id": metadata.get("phone_number_id"),
        "display_phone_number": metadata.get("display_phone_number"),
        **extra,
    }
    return InboundMessage(
        channel=Channel.WHATSAPP,
        provider="meta",
        provider_message_id=message_id,
        sender=Contact("whatsapp", f"+{sender}"),
        sender_name=names.get(sender) or None,
        subject=None,
        body=body,
        sent_at=_unix_time(message.get("timestamp")),
        thread=Thread(message_id=message_id, in_reply_to=context.get("id") or None),
        media=media,
        source_details={key: value for key, value in details.items() if value},
    )


def _required_meta_field(message: Mapping[str, Any], name: str) -> str:
    value = message.get(name)
    if not isinstance(value, str) or not value.strip():
        raise WebhookFormatError(f"Meta webhook: message without {name!r}")
    return value.strip()


def _unix_time(value: Any) -> datetime | None:
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(value), UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise WebhookFormatError(f"Meta webhook: bad timestamp {value!r}") from None


def _meta_content(
    kind: str, message: Mapping[str, Any]
) -> tuple[str, tuple[MediaLink, ...], dict[str, Any]]:
    """Body text, hosted media and type-specific details of one Cloud API message."""
    content = message.get(kind)
    content = content if isinstance(content, dict) else {}
    if kind == "text":
        return content.get("body") or NO_TEXT, (), {}
    if kind in _META_MEDIA_KINDS:
        return _meta_media(kind, content)
    if kind == "interactive":
        reply = content.get(str(content.get("type"))) or {}
        text = reply.get("title") or reply.get("body") or "[interactive]"
        return text, (), {"reply_id": reply.get("id")}
    if kind == "button":
        return content.get("text") or "[button]", (), {"payload": content.get("payload")}
    if kind == "reaction":
        reacted = {"reacted_to": content.get("message_id")}
        return f"[reaction {content.get('emoji') or 'removed'}]", (), reacted
    if kind == "location":
        where = f"{content.get('latitude')},{content.get('longitude')}"
        return f"[location {where}] {content.get('name') or ''}".strip(), (), {}
    return f"[{kind}]", (), {}


def _meta_media(
    kind: str, content: Mapping[str, Any]
) -> tuple[str, tuple[MediaLink, ...], dict[str, Any]]:
    media_id = content.get("id")
    if not media_id:
        raise WebhookFormatError(f"Meta webhook: {kind} message without a media id")
    link = MediaLink(f"meta-media:{media_id}", _bare_media_type(content.get("mime_type")))
    filename = content.get("filename")
    placeholder = f"[{kind}: {filename}]" if filename else f"[{kind}]"
    return content.get("caption") or placeholder, (link,), {"filename": filename}
