import hashlib
import json
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import pytest

from casetrail.contracts.events import Channel
from casetrail.intake.inbound import Contact, InboundAttachment
from casetrail.intake.mail import MailFormatError, parse_email, sendgrid_inbound

PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n" + bytes(range(256))
SENT = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)


def mail(
    body: str = "Hello,\nI was charged twice.\n",
    *,
    sender: str | None = '"Jane Q. Doe" <Jane.Doe@Example.COM>',
    subject: str = "Double charge",
    message_id: str | None = "<a1@mail.example.com>",
    date: datetime | None = SENT,
) -> EmailMessage:
    message = EmailMessage()
    if sender is not None:
        message["From"] = sender
    message["To"] = "Complaints <complaints@casetrail.example>"
    message["Subject"] = subject
    if message_id is not None:
        message["Message-ID"] = message_id
    if date is not None:
        message["Date"] = format_datetime(date)
    message.set_content(body)
    return message


def test_plain_email_becomes_an_email_message():
    message = parse_email(mail().as_bytes())
    assert message.channel is Channel.EMAIL
    assert message.provider == "email"
    assert message.provider_message_id == "a1@mail.example.com"
    assert message.sender == Contact("email", "jane.doe@example.com")
    assert message.sender_name == "Jane Q. Doe"
    assert message.subject == "Double charge"
    assert message.body == "Hello,\nI was charged twice.\n"
    assert message.sent_at == SENT
    assert message.attachments == ()
    assert message.source_details["to"] == ["complaints@casetrail.example"]


def test_date_in_another_zone_is_converted_to_utc():
    raw = (
        mail()
        .as_bytes()
        .replace(format_datetime(SENT).encode(), b"Fri, 14 Mar 2025 10:26:53 +0100")
    )
    assert parse_email(raw).sent_at == SENT


def test_missing_date_leaves_sent_at_unknown():
    assert parse_email(mail(date=None).as_bytes()).sent_at is None


def test_unparseable_date_leaves_sent_at_unknown():
    message = mail(date=None)
    message["Date"] = "sometime last week"
    assert parse_email(message.as_bytes()).sent_at is None


def test_unknown_zone_date_is_taken_as_utc():
    raw = mail().as_bytes().replace(b"+0000", b"-0000")
    assert parse_email(raw).sent_at == SENT


def test_missing_from_is_a_mail_format_error():
    with pytest.raises(MailFormatError, match="From"):
        parse_email(mail(sender=None).as_bytes())


def test_from_without_an_address_is_a_mail_format_error():
    raw = b"From: undisclosed\r\nSubject: hi\r\n\r\nbody\r\n"
    with pytest.raises(MailFormatError):
        parse_email(raw)


def test_html_only_alternative_is_converted_to_plain_text():
    message = mail()
    message.set_content(
        "<html><head><title>Receipt</title><style>p {color: red}</style></head>"
        "<body><p>Dear team,</p><script>alert('x')</script>"
        "<p>I was charged &pound;12.50 <b>twice</b>.</p><br>Thanks</body></html>",
        subtype="html",
    )
    message.make_alternative()
    parsed = parse_email(message.as_bytes())
    assert parsed.body == "Dear team,\n\nI was charged £12.50 twice.\n\nThanks"


def test_html_that_never_closes_head_still_yields_its_body_text():
    raw = (
        b"From: a@example.com\r\nContent-Type: text/html\r\n\r\n"
        b"<html><head><title>Receipt</title><body><p>Charged twice</p></body></html>"
    )
    assert parse_email(raw).body == "Charged twice"


def test_plain_alternative_is_preferred_over_html():
    message = mail("plain version")
    message.add_alternative("<p>html version</p>", subtype="html")
    assert parse_email(message.as_bytes()).body.strip() == "plain version"


def test_mixed_mail_keeps_pdf_attachment_bytes_and_nested_alternative_body():
    message = mail("See the attached statement.")
    message.add_alternative("<p>See the attached <i>statement</i>.</p>", subtype="html")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="statement.pdf")
    parsed = parse_email(message.as_bytes())
    assert parsed.body.strip() == "See the attached statement."
    [attachment] = parsed.attachments
    assert attachment.filename == "statement.pdf"
    assert attachment.media_type == "application/pdf"
    assert attachment.content == PDF
    assert hashlib.sha256(attachment.content).hexdigest() == hashlib.sha256(PDF).hexdigest()


def test_inline_image_with_filename_is_kept_as_attachment():
    message = mail("photo inline")
    message.add_related(b"\x89PNG\r\n", maintype="image", subtype="png", filename="dent.png")
    parsed = parse_email(message.as_bytes())
    assert [(a.filename, a.media_type) for a in parsed.attachments] == [("dent.png", "image/png")]


def test_attachment_filename_cannot_carry_a_path():
    message = mail()
    message.add_attachment(
        b"x", maintype="application", subtype="octet-stream", filename="../../etc/passwd"
    )
    assert parse_email(message.as_bytes()).attachments[0].filename == "passwd"


def test_forwarded_message_is_kept_as_an_eml_attachment():
    original = mail("the original complaint", message_id="<orig@example.org>")
    forward = mail("FYI, see below", sender="agent@partner.example")
    forward.add_attachment(original)
    parsed = parse_email(forward.as_bytes())
    assert parsed.body.strip() == "FYI, see below"
    [attachment] = parsed.attachments
    assert attachment.filename == "forwarded.eml"
    assert attachment.media_type == "message/rfc822"
    assert b"Message-ID: <orig@example.org>" in attachment.content
    assert parse_email(attachment.content).body.strip() == "the original complaint"


def test_rfc2047_encoded_subject_and_sender_name_are_decoded():
    raw = (
        b"From: =?utf-8?q?Jos=C3=A9_N=C3=BA=C3=B1ez?= <jose@example.es>\r\n"
        b"Subject: =?utf-8?b?Q29icm8gZHVwbGljYWRvIOKAkyBwZWRpZG8gNDQxMQ==?=\r\n"
        b"\r\nHola\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.subject == "Cobro duplicado \u2013 pedido 4411"
    assert parsed.sender_name == "José Núñez"


def test_latin1_body_is_decoded_with_its_charset():
    raw = (
        b"From: francois@example.fr\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
        b"Content-Transfer-Encoding: 8bit\r\n\r\nJ'ai pay\xe9 deux fois, fran\xe7ais.\r\n"
    )
    assert parse_email(raw).body.strip() == "J'ai payé deux fois, français."


def test_unknown_charset_falls_back_instead_of_failing():
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain; charset=x-made-up\r\n\r\ncaf\xc3\xa9\r\n"
    )
    assert parse_email(raw).body.strip() == "café"


def test_wrong_declared_charset_still_yields_text():
    raw = b"From: a@example.com\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nna\xefve\r\n"
    assert parse_email(raw).body.strip() == "naïve"


def test_damaged_content_type_and_from_headers_do_not_stop_parsing():
    raw = (
        b"From: Group: a@example.com, b@e\xff.f;\r\n"
        b"Content-Type: text/plain; charset*=ut\x00f-8''x\r\n\r\nstill readable\r\n"
    )
    parsed = parse_email(raw)
    assert parsed.sender == Contact("email", "a@example.com")
    assert parsed.body.strip() == "still readable"


def test_empty_body_becomes_placeholder_text():
    assert parse_email(mail("   \n").as_bytes()).body == "(no text)"


def test_headers_only_mail_survives_with_placeholder_body():
    parsed = parse_email(b"From: someone@example.com\r\n\r\n")
    assert parsed.body == "(no text)"
    assert parsed.subject is None
    assert parsed.provider_message_id is None


def test_multipart_without_boundary_survives():
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nno parts here\r\n"
    assert parse_email(raw).body == "(no text)"


def test_thread_of_three_messages_chains_in_reply_to_and_references():
    first = mail("first", message_id="<m1@example.com>")
    second = mail("second", message_id="<m2@casetrail.example>")
    second["In-Reply-To"] = "<m1@example.com>"
    second["References"] = "<m1@example.com>"
    third = mail("third", message_id=" <m3@example.com> ")
    third["In-Reply-To"] = "<m2@casetrail.example>"
    third["References"] = "<m1@example.com> <m2@casetrail.example>"
    folded = third.as_bytes().replace(b"<m1@example.com> <m2", b"<m1@example.com>\n\t<m2")

    threads = [parse_email(raw).thread for raw in (first.as_bytes(), second.as_bytes(), folded)]

    assert threads[0].message_id == "m1@example.com"
    assert threads[0].in_reply_to is None and threads[0].references == ()
    assert threads[1].in_reply_to == "m1@example.com"
    assert threads[1].references == ("m1@example.com",)
    assert threads[2].message_id == "m3@example.com"
    assert threads[2].in_reply_to == "m2@casetrail.example"
    assert threads[2].references == ("m1@example.com", "m2@casetrail.example")
    assert threads[2].earlier_ids == ("m1@example.com", "m2@casetrail.example")


# SendGrid Inbound Parse

SENDGRID_HEADERS = (
    "Received: by mx0047p1mdw1.sendgrid.net with SMTP id 6WCVv7KAWn Wed, 27 Jul 2016 20:53:06\n"
    "From: Jane Doe <jane.doe@example.com>\n"
    "Date: Fri, 14 Mar 2025 09:26:53 +0000\n"
    "Message-ID: <CAKv1+sg@mail.example.com>\n"
    "In-Reply-To: <case-77@casetrail.example>\n"
    "References: <case-77@casetrail.example>\n"
    "Subject: Re: Your complaint\n"
    "To: complaints@casetrail.example\n"
)


def test_sendgrid_default_mode_uses_posted_fields_and_header_block():
    fields = {
        "headers": SENDGRID_HEADERS,
        "from": "Jane Doe <Jane.Doe@example.com>",
        "to": "complaints@casetrail.example",
        "subject": "Re: Your complaint",
        "text": "Still not refunded.\n",
        "html": "<p>Still not refunded.</p>",
        "sender_ip": "209.85.223.170",
        "SPF": "pass",
        "dkim": "{@example.com : pass}",
        "charsets": json.dumps({"to": "UTF-8", "text": "UTF-8", "subject": "UTF-8"}),
        "attachments": "1",
        "attachment-info": json.dumps(
            {
                "attachment1": {
                    "filename": "receipt.pdf",
                    "type": "application/pdf",
                    "name": "receipt.pdf",
                }
            }
        ),
    }
    files = {"attachment1": ("receipt.pdf", "application/pdf", PDF)}
    parsed = sendgrid_inbound(fields, files)
    assert parsed.provider == "sendgrid"
    assert parsed.channel is Channel.EMAIL
    assert parsed.provider_message_id == "CAKv1+sg@mail.example.com"
    assert parsed.thread.in_reply_to == "case-77@casetrail.example"
    assert parsed.thread.references == ("case-77@casetrail.example",)
    assert parsed.sender == Contact("email", "jane.doe@example.com")
    assert parsed.sender_name == "Jane Doe"
    assert parsed.subject == "Re: Your complaint"
    assert parsed.body == "Still not refunded.\n"
    assert parsed.sent_at == SENT
    assert parsed.attachments == (InboundAttachment("receipt.pdf", "application/pdf", PDF),)
    assert parsed.source_details["SPF"] == "pass"


def test_sendgrid_default_mode_with_html_only_converts_it_to_text():
    fields = {
        "headers": SENDGRID_HEADERS,
        "from": "jane@example.com",
        "html": "<div>Hi<br>there</div>",
    }
    assert sendgrid_inbound(fields, {}).body == "Hi\nthere"


def test_sendgrid_default_mode_falls_back_to_from_in_header_block():
    parsed = sendgrid_inbound({"headers": SENDGRID_HEADERS, "text": "x"}, {})
    assert parsed.sender == Contact("email", "jane.doe@example.com")


def test_sendgrid_default_mode_without_any_sender_is_a_mail_format_error():
    with pytest.raises(MailFormatError):
        sendgrid_inbound({"headers": "Subject: hi\n", "text": "x"}, {})


def test_sendgrid_post_missing_an_announced_attachment_is_a_mail_format_error():
    fields = {"headers": SENDGRID_HEADERS, "from": "jane@example.com", "attachments": "2"}
    files = {"attachment1": ("a.pdf", "application/pdf", PDF)}
    with pytest.raises(MailFormatError, match="attachment2"):
        sendgrid_inbound(fields, files)


def test_sendgrid_raw_mode_parses_the_full_mime_message():
    message = mail("raw mode body")
    message.add_attachment(PDF, maintype="application", subtype="pdf", filename="statement.pdf")
    fields = {"email": message.as_string(), "to": "complaints@casetrail.example", "SPF": "pass"}
    parsed = sendgrid_inbound(fields, {})
    assert parsed.provider == "sendgrid"
    assert parsed.provider_message_id == "a1@mail.example.com"
    assert parsed.body.strip() == "raw mode body"
    assert parsed.attachments[0].content == PDF
    assert parsed.source_details == {"to": ["complaints@casetrail.example"], "SPF": "pass"}
