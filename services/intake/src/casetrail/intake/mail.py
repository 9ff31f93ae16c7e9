"""Inbound e-mail (raw MIME and SendGrid Inbound Parse posts) as `InboundMessage`s."""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from email import errors
from email.headerregistry import AddressHeader
from email.message import EmailMessage
from email.parser import BytesParser, Parser
from email.policy import EmailPolicy
from email.utils import getaddresses, parsedate_to_datetime
from html.parser import HTMLParser
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any, cast

from casetrail.contracts.events import Channel
from casetrail.intake.inbound import Contact, InboundAttachment, InboundMessage, Thread

NO_TEXT = "(no text)"
FORWARDED_FILENAME = "forwarded.eml"
_MESSAGE_ID = re.compile(r"<([^<>]*)>")
_MAX_FILENAME = 255
# The policy's header parser still trips over some malformed headers instead of noting defects.
_HEADER_PARSE_ERRORS = (
    errors.HeaderParseError,
    IndexError,
    ValueError,
    LookupError,
    AttributeError,
    TypeError,
)


class MailFormatError(ValueError):
    """An e-mail that cannot become a message: it names no sender at all."""


class _TolerantPolicy(EmailPolicy):
    """`policy.default`, except that a header its parser fails on is read as plain text."""

    def header_fetch_parse(self, name: str, value: str) -> Any:
        try:
            return super().header_fetch_parse(name, value)
        except _HEADER_PARSE_ERRORS:
            return _clean(_unfold(value))


_POLICY = _TolerantPolicy()
# Forwarded mail is evidence: write it back as received instead of refolding its headers.
_AS_RECEIVED = _POLICY.clone(refold_source="none")


def parse_email(raw: bytes) -> InboundMessage:
    """Translates a raw RFC 5322 message into an `InboundMessage`."""
    message = cast(EmailMessage, BytesParser(policy=_POLICY).parsebytes(raw))
    sender_name, sender = _sender(_addresses(message, "From"))
    body_part = _body_part(message)
    thread = _thread(message)
    return InboundMessage(
        channel=Channel.EMAIL,
        provider="email",
        provider_message_id=thread.message_id,
        sender=Contact("email", sender.lower()),
        sender_name=sender_name or None,
        subject=_subject(message),
        body=_plain_text(body_part) if body_part is not None else NO_TEXT,
        sent_at=_sent_at(message),
        thread=thread,
        attachments=tuple(_attachments(message, body_part)),
        source_details=_recipients(message),
    )


def sendgrid_inbound(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, str, bytes]]
) -> InboundMessage:
    """Translates a SendGrid Inbound Parse POST, in raw or default (parsed) mode."""
    details = {name: fields[name] for name in ("SPF", "dkim") if fields.get(name)}
    if fields.get("email"):
        # Raw mode: the field holds the whole MIME message, decoded as text by the form parser.
        parsed = parse_email(fields["email"].encode("utf-8", "surrogateescape"))
        return replace(
            parsed, provider="sendgrid", source_details={**parsed.source_details, **details}
        )
    headers = cast(
        EmailMessage, Parser(policy=_POLICY).parsestr(fields.get("headers") or "", headersonly=True)
    )
    posted_from = _mailboxes(getaddresses([fields.get("from") or ""]))
    sender_name, sender = _sender(posted_from or _addresses(headers, "From"))
    thread = _thread(headers)
    return InboundMessage(
        channel=Channel.EMAIL,
        provider="sendgrid",
        provider_message_id=thread.message_id,
        sender=Contact("email", sender.lower()),
        sender_name=sender_name or None,
        subject=(fields.get("subject") or "").strip() or _subject(headers),
        body=_sendgrid_body(fields),
        sent_at=_sent_at(headers),
        thread=thread,
        attachments=_sendgrid_attachments(fields, files),
        source_details={**_recipients(headers), **details},
    )


def _sender(mailboxes: list[tuple[str, str]]) -> tuple[str, str]:
    if not mailboxes:
        raise MailFormatError("e-mail has no From address")
    return mailboxes[0]


def _addresses(message: EmailMessage, name: str) -> list[tuple[str, str]]:
    """(display name, addr-spec) of each mailbox in an address header."""
    header = message[name]
    if header is None:
        return []
    if isinstance(header, AddressHeader):
        return _mailboxes([(a.display_name, a.addr_spec) for a in header.addresses])
    return _mailboxes(getaddresses([str(header)]))


def _mailboxes(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    mailboxes = []
    for name, addr_spec in pairs:
        local, _, domain = addr_spec.rpartition("@")
        # A bare local part (`From: undisclosed`) names no mailbox a reply could reach.
        if local and domain:
            mailboxes.append((_clean(name), _clean(addr_spec)))
    return mailboxes


def _clean(text: str) -> str:
    """Text free of the surrogates that stand for raw non-ASCII bytes in a header."""
    if text.isascii() or not any("\udc80" <= char <= "\udcff" for char in text):
        return text
    raw = text.encode("utf-8", "surrogateescape")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _raw_header(message: EmailMessage, name: str) -> str | None:
    """The header as received, unfolded, without the policy's (fallible) parsing."""
    for key, value in message.raw_items():
        if key.lower() == name.lower():
            return _clean(_unfold(str(value)))
    return None


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def _recipients(message: EmailMessage) -> dict[str, Any]:
    to = [addr_spec.lower() for _, addr_spec in _addresses(message, "To")]
    return {"to": to} if to else {}


def _subject(message: EmailMessage) -> str | None:
    subject = message["Subject"]
    if subject is None:
        return None
    return _clean(str(subject)).strip() or None


def _sent_at(message: EmailMessage) -> datetime | None:
    value = _raw_header(message, "Date")
    if not value:
        return None
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # RFC 5322 `-0000` means "UTC, origin's zone unknown", which parses as naive.
    return sent.replace(tzinfo=UTC) if sent.tzinfo is None else sent.astimezone(UTC)


def _thread(message: EmailMessage) -> Thread:
    in_reply_to = _message_ids(_raw_header(message, "In-Reply-To"))
    return Thread(
        message_id=next(iter(_message_ids(_raw_header(message, "Message-ID"))), None),
        in_reply_to=in_reply_to[0] if in_reply_to else None,
        references=_message_ids(_raw_header(message, "References")),
    )


def _message_ids(value: str | None) -> tuple[str, ...]:
    if not value:
        return ()
    bracketed = _MESSAGE_ID.findall(value)
    candidates = bracketed if bracketed else value.split()
    ids = (candidate.strip().strip("<>").strip() for candidate in candidates)
    return tuple(dict.fromkeys(message_id for message_id in ids if message_id))


def _body_part(message: EmailMessage) -> EmailMessage | None:
    # get_body reads each part's Content-Disposition, which a damaged header leaves unparsed.
    try:
        return cast(EmailMessage | None, message.get_body(preferencelist=("plain", "html")))
    except _HEADER_PARSE_ERRORS:
        return None


def _plain_text(part: EmailMessage) -> str:
    text = _decoded_text(part)
    if part.get_content_subtype() == "html":
        text = _html_to_text(text)
    return text if text.strip() else NO_TEXT


def _decoded_text(part: EmailMessage) -> str:
    payload = part.get_payload(decode=True)
    content = payload if isinstance(payload, bytes) else b""
    # Declared charsets are often wrong or unknown; latin-1 decodes any byte sequence.
    for charset in (_declared_charset(part), "utf-8"):
        if charset:
            try:
                return content.decode(charset)
            except (LookupError, ValueError):
                continue
    return content.decode("latin-1")


def _declared_charset(part: EmailMessage) -> str | None:
    try:
        return part.get_content_charset()
    except _HEADER_PARSE_ERRORS:
        return None


def _attachments(message: EmailMessage, body_part: EmailMessage | None) -> list[InboundAttachment]:
    attachments = []
    for part in _leaf_parts(message):
        if part is body_part or not _is_attachment(part):
            continue
        number = len(attachments) + 1
        attachments.append(
            InboundAttachment(_filename(part, number), part.get_content_type(), _content(part))
        )
    return attachments


def _leaf_parts(part: EmailMessage) -> Iterator[EmailMessage]:
    """Every non-multipart part, without descending into forwarded messages."""
    # A multipart without a usable boundary keeps its payload as text: treat it as a leaf.
    if part.is_multipart() and part.get_content_maintype() == "multipart":
        for child in part.iter_parts():
            yield from _leaf_parts(cast(EmailMessage, child))
    else:
        yield part


def _is_attachment(part: EmailMessage) -> bool:
    return (
        part.get_content_type() == "message/rfc822"
        or part.get_content_disposition() == "attachment"
        or (part.get_content_maintype() != "text" and bool(_filename_param(part)))
    )


def _filename(part: EmailMessage, number: int) -> str:
    name = _filename_param(part)
    if not name and part.get_content_type() == "message/rfc822":
        return FORWARDED_FILENAME
    return name or f"attachment-{number}{mimetypes.guess_extension(part.get_content_type()) or ''}"


def _filename_param(part: EmailMessage) -> str | None:
    try:
        name = part.get_filename()
    except _HEADER_PARSE_ERRORS:
        return None
    return _safe_filename(_clean(name)) if name else None


def _safe_filename(name: str) -> str | None:
    """The last path component of a sender-chosen name, so it can never point elsewhere."""
    base = PureWindowsPath(PurePosixPath(name.strip()).name).name.strip()
    return base[-_MAX_FILENAME:] if base not in ("", ".", "..") else None


def _content(part: EmailMessage) -> bytes:
    if part.is_multipart():
        # A leaf that is "multipart" is a message/rfc822 part holding the parsed message.
        forwarded = part.get_payload(0)
        return cast(EmailMessage, forwarded).as_bytes(policy=_AS_RECEIVED)
    payload = part.get_payload(decode=True)
    return payload if isinstance(payload, bytes) else b""


def _sendgrid_body(fields: Mapping[str, str]) -> str:
    text = fields.get("text") or ""
    if not text.strip():
        text = _html_to_text(fields.get("html") or "")
    return text if text.strip() else NO_TEXT


def _sendgrid_attachments(
    fields: Mapping[str, str], files: Mapping[str, tuple[str, str, bytes]]
) -> tuple[InboundAttachment, ...]:
    try:
        count = int(fields.get("attachments") or 0)
    except ValueError:
        raise MailFormatError("SendGrid post: 'attachments' is not a number") from None
    info = _attachment_info(fields.get("attachment-info"))
    attachments = []
    for number in range(1, count + 1):
        key = f"attachment{number}"
        if key not in files:
            raise MailFormatError(f"SendGrid post announces {count} attachments but has no {key}")
        filename, content_type, content = files[key]
        meta = info.get(key)
        meta = meta if isinstance(meta, dict) else {}
        name = _safe_filename(filename or meta.get("filename") or "") or key
        media_type = (meta.get("type") or content_type or "application/octet-stream").lower()
        attachments.append(InboundAttachment(name, media_type.split(";", 1)[0].strip(), content))
    return tuple(attachments)


def _attachment_info(value: str | None) -> dict[str, Any]:
    # The info only refines names and types; the files themselves still arrive without it.
    try:
        info = json.loads(value) if value else {}
    except json.JSONDecodeError:
        return {}
    return info if isinstance(info, dict) else {}


def _html_to_text(html: str) -> str:
    """Readable plain text of an HTML body: block elements become line breaks."""
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.chunks).splitlines())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


class _TextExtractor(HTMLParser):
    _SKIPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
    _BLOCKS = frozenset(
        {"br", "p", "div", "li", "tr", "table", "h1", "h2", "h3", "h4", "h5", "h6"}
        | {"blockquote", "pre", "hr", "ul", "ol", "section", "article", "header", "footer"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            # Sloppy mail HTML often never closes <head>; the body is shown regardless.
            self._skipping = 0
        elif tag in self._SKIPPED:
            self._skipping += 1
        elif tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BLOCKS:
            self.chunks.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.chunks.append(data)
