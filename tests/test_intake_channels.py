"""End-to-end: complaints arriving the way real channels deliver them, through the stack."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from email.message import EmailMessage
from typing import Any

import httpx
import pytest
from twilio.request_validator import RequestValidator

pytestmark = pytest.mark.e2e


def intake(stack: Any, path: str) -> str:
    return f"{stack.service_url('intake')}{path}"


def post_message(stack: Any, channel: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        intake(stack, f"/v1/channels/{channel}/messages"),
        json=body,
        headers=stack.auth_headers("channel") | headers,
    )


def history_types(stack: Any, subject: str) -> list[str]:
    response = httpx.get(
        f"{stack.service_url('audit')}/v1/cases/{subject}/history",
        params={"limit": 1000},
        headers=stack.auth_headers("auditor"),
    )
    if response.status_code == 404:
        return []
    return [r["type"] for r in response.json()["records"]]


def a_phone() -> str:
    return f"+1415{uuid.uuid4().int % 10_000_000:07d}"


def test_a_channel_switch_keeps_the_case(stack, wait_for):
    phone = a_phone()
    first = post_message(
        stack, "sms", {"customer": {"phone": phone, "name": "Ann Lee"}, "body": "Charged twice"}
    )
    assert first.status_code == 202, first.text
    assert first.json()["status"] == "opened"
    second = post_message(
        stack,
        "whatsapp",
        {"customer": {"phone": phone, "whatsapp": phone}, "body": "Any news on my refund?"},
    )
    assert second.json() | {"message_id": None} == first.json() | {
        "message_id": None,
        "status": "continued",
        "rule_id": "CONT-OPEN-CASE",
    }
    case_id = first.json()["case_id"]
    view = httpx.get(intake(stack, f"/v1/cases/{case_id}"), headers=stack.auth_headers("agent"))
    assert view.json()["channels"] == ["sms", "whatsapp"]
    assert view.json()["messages"] == 2
    wait_for(
        lambda: "casetrail.case.message_received.v1" in history_types(stack, case_id), timeout=30
    )


def test_quoting_the_case_reference_reaches_the_case_from_another_customer_contact(stack):
    opened = post_message(
        stack, "chat", {"customer": {"account_id": f"acct-{uuid.uuid4()}"}, "body": "Locked out"}
    )
    reference = opened.json()["reference"]
    later = post_message(
        stack,
        "email",
        {
            "customer": {"email": f"{uuid.uuid4().hex[:8]}@example.com"},
            "subject": f"Re: your case {reference}",
            "body": "Here is the screenshot you asked for.",
        },
    )
    assert later.json()["case_id"] == opened.json()["case_id"]
    assert later.json()["rule_id"] == "CONT-REFERENCE"


def test_a_redelivered_message_records_nothing_new(stack):
    body = {"customer": {"phone": a_phone()}, "body": "hello", "provider_message_id": "SM-1"}
    first = post_message(stack, "sms", body, **{"Idempotency-Key": f"k-{uuid.uuid4()}"})
    key = {"Idempotency-Key": first.request.headers["Idempotency-Key"]}
    again = post_message(stack, "sms", body, **key)
    assert again.json()["status"] == "already_recorded"
    assert again.json()["message_id"] == first.json()["message_id"]
    changed = post_message(stack, "sms", body | {"body": "something else"}, **key)
    assert changed.status_code == 409
    assert changed.json()["error"] == "idempotency_key_reused"


@pytest.mark.parametrize(
    ("channel", "source", "missing"),
    [
        ("regulatory", {"agency": "CFPB"}, "agency_complaint_id"),
        ("phone", {}, "callback_consent"),
        ("legal", {}, "sender_firm"),
        ("nod", {}, "nod_reference"),
    ],
)
def test_each_channel_asks_for_its_own_facts(stack, channel, source, missing):
    response = post_message(
        stack,
        channel,
        {"customer": {"account_id": "acct-1", "phone": a_phone()}, "body": "x", "source": source},
    )
    assert response.status_code == 422
    assert response.json()["error"] == "invalid_message"
    assert response.json()["detail"][0]["loc"] == ["body", "source", missing]


def test_an_sms_must_name_a_phone_number(stack):
    response = post_message(stack, "sms", {"customer": {"email": "a@example.com"}, "body": "x"})
    assert response.status_code == 422
    assert "phone" in response.json()["message"]


def test_regulatory_messages_keep_the_agency_and_its_complaint_id(stack, wait_for):
    source = {"agency": "CFPB", "agency_complaint_id": f"{uuid.uuid4().int % 10**8}"}
    response = post_message(
        stack,
        "regulatory",
        {
            "customer": {"account_id": f"acct-{uuid.uuid4()}"},
            "body": "Portal complaint",
            "source": source,
        },
    )
    assert response.status_code == 202, response.text
    case_id = response.json()["case_id"]
    records = wait_for(
        lambda: (
            httpx.get(
                f"{stack.service_url('audit')}/v1/cases/{case_id}/history",
                headers=stack.auth_headers("auditor"),
            )
            .json()
            .get("records")
        ),
        timeout=30,
    )
    assert records[0]["event"]["data"]["source"] == source


# -- e-mail ---------------------------------------------------------------------------------


def an_email(sender: str, subject: str, message_id: str, replying_to: list[str]) -> bytes:
    message = EmailMessage()
    message["From"] = f"Jane Roe <{sender}>"
    message["To"] = "complaints@casetrail.example"
    message["Subject"] = subject
    message["Message-ID"] = f"<{message_id}>"
    if replying_to:
        message["In-Reply-To"] = f"<{replying_to[-1]}>"
        message["References"] = " ".join(f"<{m}>" for m in replying_to)
    message.set_content(f"Message {message_id}")
    return message.as_bytes()


def post_email(stack: Any, raw: bytes) -> httpx.Response:
    return httpx.post(
        intake(stack, "/v1/email/messages"),
        content=raw,
        headers=stack.auth_headers("channel") | {"Content-Type": "message/rfc822"},
    )


def test_an_email_thread_of_three_messages_is_one_case(stack, wait_for):
    # Different senders on purpose: only the thread headers can tie these together.
    ids = [f"{uuid.uuid4()}@mail.example" for _ in range(3)]
    answers = [
        post_email(
            stack, an_email(f"{uuid.uuid4().hex[:6]}@example.com", "Refund", ids[i], ids[:i])
        )
        for i in range(3)
    ]
    assert [a.status_code for a in answers] == [202, 202, 202], answers[-1].text
    assert {a.json()["case_id"] for a in answers} == {answers[0].json()["case_id"]}
    assert [a.json()["rule_id"] for a in answers] == ["OPEN-NEW", "CONT-THREAD", "CONT-THREAD"]
    case_id = answers[0].json()["case_id"]
    expected = ["casetrail.case.opened.v1"] + ["casetrail.case.message_received.v1"] * 2
    wait_for(
        lambda: (
            [t for t in history_types(stack, case_id) if "opened" in t or "message" in t]
            == expected
        ),
        timeout=30,
    )


def test_email_attachments_are_stored_with_their_digest(stack):
    message = EmailMessage()
    message["From"] = "pdf.sender@example.com"
    message["Subject"] = "Statement"
    message["Message-ID"] = f"<{uuid.uuid4()}@mail.example>"
    message.set_content("See attached.")
    pdf = b"%PDF-1.4 " + uuid.uuid4().bytes
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename="statement.pdf")
    answer = post_email(stack, message.as_bytes())
    case = httpx.get(
        intake(stack, f"/v1/cases/{answer.json()['case_id']}"), headers=stack.auth_headers("agent")
    ).json()
    (attachment,) = case["attachments"]
    assert attachment["sha256"] == hashlib.sha256(pdf).hexdigest()
    content = httpx.get(
        intake(stack, f"/v1/attachments/{attachment['sha256']}"),
        headers=stack.auth_headers("agent"),
    )
    assert content.content == pdf


def test_an_attachment_over_the_limit_is_refused_with_413(stack):
    big = b"0" * (10 * 1024 * 1024 + 1)
    response = httpx.post(
        intake(stack, "/v1/attachments"),
        files={"file": ("big.pdf", big, "application/pdf")},
        headers=stack.auth_headers("channel"),
        timeout=60,
    )
    assert response.status_code == 413
    assert response.json()["error"] == "attachment_too_large"


# -- provider webhooks ----------------------------------------------------------------------


def twilio_post(stack: Any, form: dict[str, str], token: str) -> httpx.Response:
    url = intake(stack, "/v1/webhooks/twilio")
    signature = RequestValidator(token).compute_signature(url, form)
    return httpx.post(url, data=form, headers={"X-Twilio-Signature": signature})


def twilio_form(phone: str, sid: str, whatsapp: bool = False) -> dict[str, str]:
    sender = f"whatsapp:{phone}" if whatsapp else phone
    return {"MessageSid": sid, "From": sender, "To": "+18005550100", "Body": "Card declined"}


def test_twilio_sms_with_a_valid_signature_opens_a_case_once(stack):
    token = stack.provider_env()["INTAKE_TWILIO_AUTH_TOKEN"]
    form = twilio_form(a_phone(), f"SM{uuid.uuid4().hex}")
    first = twilio_post(stack, form, token)
    assert first.status_code == 200, first.text
    assert "<Response>" in first.text
    retried = twilio_post(stack, form, token)
    assert retried.status_code == 200
    lookup = post_message(stack, "sms", {"customer": {"phone": form["From"]}, "body": "still?"})
    assert lookup.json()["rule_id"] == "CONT-OPEN-CASE"
    view = httpx.get(
        intake(stack, f"/v1/cases/{lookup.json()['case_id']}"), headers=stack.auth_headers("agent")
    ).json()
    assert (view["channel"], view["messages"]) == ("sms", 2)  # the retry added nothing


def test_twilio_with_a_bad_signature_is_refused_and_records_nothing(stack):
    phone = a_phone()
    form = twilio_form(phone, f"SM{uuid.uuid4().hex}", whatsapp=True)
    forged = twilio_post(stack, form, token="not-the-token")
    assert forged.status_code == 401
    assert forged.json()["error"] == "invalid_signature"
    unsigned = httpx.post(intake(stack, "/v1/webhooks/twilio"), data=form)
    assert unsigned.status_code == 401
    after = post_message(
        stack, "whatsapp", {"customer": {"whatsapp": phone}, "body": "first real message"}
    )
    assert after.json()["status"] == "opened"


def meta_payload(wa_id: str, message_id: str) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": "102290129340398",
                "changes": [
                    {
                        "field": "messages",
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {"phone_number_id": "106540352242922"},
                            "contacts": [{"profile": {"name": "Kerry"}, "wa_id": wa_id}],
                            "messages": [
                                {
                                    "from": wa_id,
                                    "id": message_id,
                                    "timestamp": "1763900000",
                                    "type": "text",
                                    "text": {"body": "My payment failed"},
                                }
                            ],
                        },
                    }
                ],
            }
        ],
    }


def meta_post(stack: Any, raw: bytes, secret: str) -> httpx.Response:
    signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
    return httpx.post(
        intake(stack, "/v1/webhooks/meta"),
        content=raw,
        headers={"X-Hub-Signature-256": signature, "Content-Type": "application/json"},
    )


def test_meta_whatsapp_with_a_valid_signature_opens_a_case_and_a_bad_one_is_refused(stack):
    secret = stack.provider_env()["INTAKE_META_APP_SECRET"]
    wa_id = f"1415{uuid.uuid4().int % 10_000_000:07d}"
    raw = json.dumps(meta_payload(wa_id, f"wamid.{uuid.uuid4().hex}")).encode()
    forged = meta_post(stack, raw, "wrong-secret")
    assert forged.status_code == 401
    signed = meta_post(stack, raw, secret)
    assert signed.status_code == 200, signed.text
    (receipt,) = signed.json()["received"]
    assert receipt["status"] == "opened"
    again = meta_post(stack, raw, secret)
    assert again.json()["received"][0]["status"] == "already_recorded"


def test_meta_verification_handshake(stack):
    token = stack.provider_env()["INTAKE_META_VERIFY_TOKEN"]
    url = intake(stack, "/v1/webhooks/meta")
    params = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": token}
    assert httpx.get(url, params=params).text == "1158201444"
    assert httpx.get(url, params=params | {"hub.verify_token": "nope"}).status_code == 403


def test_sendgrid_inbound_parse_needs_its_basic_credentials(stack):
    env = stack.provider_env()
    fields = {
        "from": "Sam <sam@example.com>",
        "subject": "Double charge",
        "text": "I was charged twice.",
        "headers": f"Message-ID: <{uuid.uuid4()}@sg.example>\nSubject: Double charge\n",
    }
    url = intake(stack, "/v1/webhooks/sendgrid")
    credentials = (
        f"{env['INTAKE_SENDGRID_INBOUND_USERNAME']}:{env['INTAKE_SENDGRID_INBOUND_PASSWORD']}"
    )
    good = {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()}
    bad = {"Authorization": "Basic " + base64.b64encode(b"sendgrid:guess").decode()}
    assert httpx.post(url, data=fields, headers=bad).status_code == 401
    response = httpx.post(url, data=fields, headers=good)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "opened"


# -- customers ------------------------------------------------------------------------------


def test_the_customer_profile_lists_contacts_and_cases(stack, wait_for):
    phone, email = a_phone(), f"{uuid.uuid4().hex[:8]}@example.com"
    opened = post_message(
        stack, "sms", {"customer": {"phone": phone, "email": email, "name": "Kim"}, "body": "hi"}
    )
    case = httpx.get(
        intake(stack, f"/v1/cases/{opened.json()['case_id']}"), headers=stack.auth_headers("agent")
    ).json()
    customer_id = case["customer_id"]
    url = intake(stack, f"/v1/customers/{customer_id}")
    profile = httpx.get(url, headers=stack.auth_headers("agent")).json()
    assert profile["name"] == "Kim"
    assert {(c["kind"], c["value"]) for c in profile["contacts"]} == {
        ("phone", phone),
        ("email", email),
    }
    assert [c["case_id"] for c in profile["cases"]] == [opened.json()["case_id"]]
    new_email = f"{uuid.uuid4().hex[:8]}@example.com"
    changed = httpx.patch(
        f"{url}/contacts",
        json={
            "add": [{"kind": "email", "value": new_email}],
            "remove": [{"kind": "email", "value": email}],
        },
        headers=stack.auth_headers("agent"),
    )
    assert changed.status_code == 200, changed.text
    assert ("email", new_email) in {(c["kind"], c["value"]) for c in changed.json()["contacts"]}
    assert ("email", email) not in {(c["kind"], c["value"]) for c in changed.json()["contacts"]}
    wait_for(
        lambda: (
            history_types(stack, customer_id).count("casetrail.customer.contact_updated.v1") == 2
        ),
        timeout=30,
    )


def test_personal_data_never_reaches_the_logs(stack):
    name, email, phone = "Zebulon Quarrington", f"zq-{uuid.uuid4().hex[:6]}@example.com", a_phone()
    narrative = f"my secret narrative {uuid.uuid4().hex}"
    post_message(
        stack,
        "sms",
        {"customer": {"phone": phone, "email": email, "name": name}, "body": narrative},
    )
    post_message(stack, "sms", {"customer": {"email": email, "name": name}, "body": narrative})
    post_message(stack, "regulatory", {"customer": {"phone": phone}, "body": narrative})
    token = stack.provider_env()["INTAKE_META_VERIFY_TOKEN"]
    httpx.get(
        intake(stack, "/v1/webhooks/meta"),
        params={"hub.mode": "subscribe", "hub.challenge": "1", "hub.verify_token": token},
    )
    twilio_post(stack, twilio_form(phone, f"SM{uuid.uuid4().hex}") | {"Body": narrative}, "bad")
    logs = "\n".join(path.read_text(errors="replace") for path in stack.logs.glob("*.log"))
    for secret in (name, email, phone, narrative, token):
        assert secret not in logs


def test_an_uploaded_attachment_is_named_by_a_later_message(stack):
    document = b"%PDF-1.7 statement " + uuid.uuid4().bytes
    uploaded = httpx.post(
        intake(stack, "/v1/attachments"),
        files={"file": ("statement.pdf", document, "application/pdf")},
        headers=stack.auth_headers("channel"),
    )
    assert uploaded.status_code == 201, uploaded.text
    digest = uploaded.json()["sha256"]
    assert digest == hashlib.sha256(document).hexdigest()
    message = {
        "customer": {"account_id": f"acct-{uuid.uuid4()}"},
        "body": "Statement attached",
        "attachments": [{"sha256": digest, "filename": "march.pdf"}],
    }
    answer = post_message(stack, "in_app", message)
    case = httpx.get(
        intake(stack, f"/v1/cases/{answer.json()['case_id']}"), headers=stack.auth_headers("agent")
    ).json()
    assert case["attachments"] == [
        {
            "filename": "march.pdf",
            "media_type": "application/pdf",
            "size_bytes": len(document),
            "sha256": digest,
        }
    ]
    unknown = post_message(
        stack, "in_app", message | {"attachments": [{"sha256": "0" * 64, "filename": "x.pdf"}]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"] == "unknown_attachment"


def test_a_nul_character_is_refused_wherever_it_comes_in(stack):
    json_nul = post_message(stack, "sms", {"customer": {"phone": a_phone()}, "body": "a\u0000b"})
    assert json_nul.status_code == 422
    token = stack.provider_env()["INTAKE_TWILIO_AUTH_TOKEN"]
    form = twilio_form(a_phone(), f"SM{uuid.uuid4().hex}") | {"Body": "a\x00b"}
    assert twilio_post(stack, form, token).status_code == 422
