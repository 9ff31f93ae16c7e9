import copy
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from casetrail.contracts.events import Channel
from casetrail.intake.inbound import Contact, MediaLink
from casetrail.intake.webhooks import (
    WebhookFormatError,
    meta_messages,
    meta_verification_challenge,
    twilio_message,
    verify_meta,
    verify_twilio,
)


@pytest.fixture(scope="module")
def vectors(shared_data: Path) -> dict:
    path = shared_data / "webhooks" / "webhook_signature_vectors.json"
    return json.loads(path.read_text(encoding="utf-8"))


@pytest.fixture
def twilio_form(vectors: dict) -> dict:
    return vectors["twilio_form"]


def with_port_443(url: str) -> str:
    return url.replace("mycompany.com/", "mycompany.com:443/", 1)


# Twilio signatures


def test_twilio_form_vector_signature_is_valid(twilio_form):
    v = twilio_form
    assert verify_twilio(v["auth_token"], v["url"], v["params"], v["expected_signature"])


def test_twilio_signature_made_over_the_url_with_port_443_is_valid(twilio_form):
    v = twilio_form
    assert verify_twilio(
        v["auth_token"], v["url"], v["params"], v["also_valid_with_port_443_variant"]
    )
    assert verify_twilio(
        v["auth_token"], with_port_443(v["url"]), v["params"], v["expected_signature"]
    )


def test_twilio_duplicate_params_are_signed_sorted_and_deduplicated(twilio_form):
    case = twilio_form["duplicate_params_case"]
    pairs = [(name, value) for name, value in case["params_multidict"]]
    assert verify_twilio(
        twilio_form["auth_token"], twilio_form["url"], pairs, case["expected_signature"]
    )


def test_twilio_duplicate_params_signature_fails_when_a_repeated_value_is_lost(twilio_form):
    case = twilio_form["duplicate_params_case"]
    last_value_wins = dict(case["params_multidict"])
    assert not verify_twilio(
        twilio_form["auth_token"], twilio_form["url"], last_value_wins, case["expected_signature"]
    )


def test_twilio_json_body_vector_signature_is_valid(vectors):
    v = vectors["twilio_json_body"]
    token = vectors["twilio_form"]["auth_token"]
    body = v["body"].encode()
    assert verify_twilio(token, v["url"], None, v["expected_signature"], raw_json_body=body)


def test_twilio_json_body_changed_after_signing_fails(vectors):
    v = vectors["twilio_json_body"]
    token = vectors["twilio_form"]["auth_token"]
    tampered = v["body"].replace("true", "false").encode()
    assert not verify_twilio(token, v["url"], None, v["expected_signature"], raw_json_body=tampered)


def test_twilio_json_body_without_body_hash_in_url_fails(vectors):
    v = vectors["twilio_json_body"]
    token = vectors["twilio_form"]["auth_token"]
    url = vectors["twilio_form"]["url"]
    body = v["body"].encode()
    assert not verify_twilio(token, url, None, v["expected_signature"], raw_json_body=body)


def test_twilio_json_body_with_form_params_too_is_a_caller_error(vectors, twilio_form):
    v = vectors["twilio_json_body"]
    with pytest.raises(ValueError, match="either"):
        verify_twilio(
            twilio_form["auth_token"],
            v["url"],
            twilio_form["params"],
            v["expected_signature"],
            raw_json_body=v["body"].encode(),
        )


def test_tampered_param_fails_twilio_signature(twilio_form):
    v = twilio_form
    params = {**v["params"], "Digits": "9999"}
    assert not verify_twilio(v["auth_token"], v["url"], params, v["expected_signature"])


def test_tampered_url_fails_twilio_signature(twilio_form):
    v = twilio_form
    url = v["url"].replace("foo=1", "foo=2")
    assert not verify_twilio(v["auth_token"], url, v["params"], v["expected_signature"])


def test_wrong_auth_token_fails_twilio_signature(twilio_form):
    v = twilio_form
    assert not verify_twilio("54321", v["url"], v["params"], v["expected_signature"])


@pytest.mark.parametrize("signature", [None, ""])
def test_missing_signature_fails_twilio_check(twilio_form, signature):
    v = twilio_form
    assert not verify_twilio(v["auth_token"], v["url"], v["params"], signature)


def test_empty_auth_token_never_validates(twilio_form):
    v = twilio_form
    assert not verify_twilio("", v["url"], v["params"], v["expected_signature"])


# Meta signatures and handshake


@pytest.fixture
def meta(vectors: dict) -> dict:
    return vectors["meta_x_hub_signature_256"]


def test_meta_vector_signature_is_valid(meta):
    header = f"sha256={meta['expected_hex']}"
    assert verify_meta(meta["app_secret"], meta["body"].encode(), header)


def test_meta_signature_hex_is_accepted_in_upper_case(meta):
    header = f"sha256={meta['expected_hex'].upper()}"
    assert verify_meta(meta["app_secret"], meta["body"].encode(), header)


def test_tampered_body_fails_meta_signature(meta):
    header = f"sha256={meta['expected_hex']}"
    assert not verify_meta(meta["app_secret"], b"test!", header)


def test_wrong_secret_fails_meta_signature(meta):
    header = f"sha256={meta['expected_hex']}"
    assert not verify_meta("not-the-secret", meta["body"].encode(), header)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "sha1=0329a06b62cd16b33eb6792be8c60b158d89a2ee",
        "0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914",
        "sha256=zz29a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914",
        "sha256=0329a06b",
        "sha256=",
    ],
    ids=["missing", "empty", "sha1", "no-prefix", "non-hex", "truncated", "prefix-only"],
)
def test_malformed_meta_signature_header_fails(meta, header):
    assert not verify_meta(meta["app_secret"], meta["body"].encode(), header)


def test_meta_handshake_returns_challenge_for_matching_token():
    params = {"hub.mode": "subscribe", "hub.verify_token": "s3cret", "hub.challenge": "1158201444"}
    assert meta_verification_challenge(params, "s3cret") == "1158201444"


@pytest.mark.parametrize(
    "params",
    [
        {"hub.mode": "subscribe", "hub.verify_token": "guess", "hub.challenge": "1"},
        {"hub.mode": "unsubscribe", "hub.verify_token": "s3cret", "hub.challenge": "1"},
        {"hub.verify_token": "s3cret", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.challenge": "1"},
        {"hub.mode": "subscribe", "hub.verify_token": "s3cret"},
    ],
    ids=["wrong-token", "wrong-mode", "no-mode", "no-token", "no-challenge"],
)
def test_meta_handshake_is_refused_without_subscribe_mode_and_matching_token(params):
    assert meta_verification_challenge(params, "s3cret") is None


def test_meta_handshake_is_refused_when_no_token_is_configured():
    params = {"hub.mode": "subscribe", "hub.verify_token": "", "hub.challenge": "1"}
    assert meta_verification_challenge(params, "") is None


# Twilio messages

SMS_FORM = {
    "ToCountry": "US",
    "SmsMessageSid": "SM5f2b3a0c9d4e4b7c8a1f0e2d3c4b5a69",
    "NumMedia": "0",
    "SmsSid": "SM5f2b3a0c9d4e4b7c8a1f0e2d3c4b5a69",
    "SmsStatus": "received",
    "Body": "My card was charged twice for order 4411",
    "To": "+18005551212",
    "NumSegments": "1",
    "MessageSid": "SM5f2b3a0c9d4e4b7c8a1f0e2d3c4b5a69",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "+14158675309",
    "ApiVersion": "2010-04-01",
}

WHATSAPP_FORM = {
    "SmsMessageSid": "MM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "NumMedia": "2",
    "ProfileName": "Ana Souza",
    "MessageType": "image",
    "SmsSid": "MM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "WaId": "5511987654321",
    "SmsStatus": "received",
    "Body": "",
    "To": "whatsapp:+14155238886",
    "MediaContentType0": "image/jpeg",
    "MediaUrl0": "https://api.twilio.com/2010-04-01/Accounts/AC01/Messages/MM9a/Media/ME01",
    "MediaContentType1": "audio/ogg; codecs=opus",
    "MediaUrl1": "https://api.twilio.com/2010-04-01/Accounts/AC01/Messages/MM9a/Media/ME02",
    "NumSegments": "1",
    "ReferralNumMedia": "0",
    "MessageSid": "MM9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "AccountSid": "AC0123456789abcdef0123456789abcdef",
    "From": "whatsapp:+5511987654321",
    "ApiVersion": "2010-04-01",
}


def test_twilio_sms_becomes_an_sms_message_from_the_phone_number():
    message = twilio_message(SMS_FORM)
    assert message.channel is Channel.SMS
    assert message.provider == "twilio"
    assert message.provider_message_id == SMS_FORM["MessageSid"]
    assert message.sender == Contact("phone", "+14158675309")
    assert message.sender_name is None
    assert message.subject is None
    assert message.body == "My card was charged twice for order 4411"
    assert message.media == ()
    assert message.source_details["to"] == "+18005551212"


def test_twilio_whatsapp_media_message_keeps_profile_name_and_media_links():
    message = twilio_message(WHATSAPP_FORM)
    assert message.channel is Channel.WHATSAPP
    assert message.sender == Contact("whatsapp", "+5511987654321")
    assert message.sender_name == "Ana Souza"
    assert message.media == (
        MediaLink(WHATSAPP_FORM["MediaUrl0"], "image/jpeg"),
        MediaLink(WHATSAPP_FORM["MediaUrl1"], "audio/ogg"),
    )
    assert message.body == "[image]"


def test_twilio_whatsapp_reply_points_at_the_message_it_answers():
    form = {**WHATSAPP_FORM, "NumMedia": "0", "Body": "yes", "OriginalRepliedMessageSid": "SM01"}
    message = twilio_message(form)
    assert message.thread.message_id == WHATSAPP_FORM["MessageSid"]
    assert message.thread.in_reply_to == "SM01"


def test_twilio_message_without_text_or_media_still_has_a_body():
    assert twilio_message({**SMS_FORM, "Body": "  "}).body == "(no text)"


def test_twilio_short_code_sender_keeps_the_message_without_a_contact():
    message = twilio_message({**SMS_FORM, "From": "72345"})
    assert message.sender is None
    assert message.source_details["from"] == "72345"


@pytest.mark.parametrize("missing", ["MessageSid", "From"])
def test_twilio_form_without_required_field_is_a_format_error(missing):
    form = {k: v for k, v in SMS_FORM.items() if k != missing}
    with pytest.raises(WebhookFormatError, match=missing):
        twilio_message(form)


def test_twilio_form_announcing_missing_media_is_a_format_error():
    with pytest.raises(WebhookFormatError, match="MediaUrl0"):
        twilio_message({**SMS_FORM, "NumMedia": "1"})


def test_twilio_from_on_an_unknown_channel_is_a_format_error():
    with pytest.raises(WebhookFormatError, match="messenger"):
        twilio_message({**SMS_FORM, "From": "messenger:1234567890"})


# Meta WhatsApp Cloud API messages


def cloud_api(value: dict) -> dict:
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
                            "metadata": {
                                "display_phone_number": "15550783881",
                                "phone_number_id": "106540352242922",
                            },
                            **value,
                        },
                    }
                ],
            }
        ],
    }


CONTACTS = [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}]

TEXT_PAYLOAD = cloud_api(
    {
        "contacts": CONTACTS,
        "messages": [
            {
                "from": "16505551234",
                "id": "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
                "timestamp": "1749416383",
                "type": "text",
                "text": {"body": "Does it come in another color?"},
            }
        ],
    }
)

IMAGE_PAYLOAD = cloud_api(
    {
        "contacts": CONTACTS,
        "messages": [
            {
                "from": "16505551234",
                "id": "wamid.IMAGE1",
                "timestamp": "1749416400",
                "type": "image",
                "image": {
                    "caption": "The damaged parcel",
                    "mime_type": "image/jpeg",
                    "sha256": "IwS5HBx8rQ2pGkWvX9yQ0u8tsnHx1AQjv0sQq2EMq8k=",
                    "id": "1003383421387256",
                },
            }
        ],
    }
)

DOCUMENT_PAYLOAD = cloud_api(
    {
        "contacts": CONTACTS,
        "messages": [
            {
                "context": {"from": "15550783881", "id": "wamid.EARLIER"},
                "from": "16505551234",
                "id": "wamid.DOC1",
                "timestamp": "1749416500",
                "type": "document",
                "document": {
                    "filename": "statement-may.pdf",
                    "mime_type": "application/pdf",
                    "sha256": "Yjc1ZDEzYTE2OGNmYzFhNTI3NmM4ZWI5NWI3MDk0NzE=",
                    "id": "2019473215342519",
                },
            }
        ],
    }
)

STATUS_PAYLOAD = cloud_api(
    {
        "statuses": [
            {
                "id": "wamid.SENT1",
                "status": "delivered",
                "timestamp": "1749416600",
                "recipient_id": "16505551234",
                "conversation": {"id": "CONVERSATION_ID", "origin": {"type": "service"}},
                "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"},
            }
        ]
    }
)


def test_meta_text_message_becomes_a_whatsapp_message():
    [message] = meta_messages(TEXT_PAYLOAD)
    assert message.channel is Channel.WHATSAPP
    assert message.provider == "meta"
    assert message.provider_message_id.startswith("wamid.HBgL")
    assert message.sender == Contact("whatsapp", "+16505551234")
    assert message.sender_name == "Sheena Nelson"
    assert message.body == "Does it come in another color?"
    assert message.sent_at == datetime(2025, 6, 8, 20, 59, 43, tzinfo=UTC)
    assert message.sent_at.tzinfo is UTC
    assert message.source_details["phone_number_id"] == "106540352242922"


def test_meta_image_with_caption_uses_caption_as_body_and_links_the_media():
    [message] = meta_messages(IMAGE_PAYLOAD)
    assert message.body == "The damaged parcel"
    assert message.media == (MediaLink("meta-media:1003383421387256", "image/jpeg"),)


def test_meta_image_without_caption_gets_a_placeholder_body():
    payload = copy.deepcopy(IMAGE_PAYLOAD)
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["image"]["caption"]
    [message] = meta_messages(payload)
    assert message.body == "[image]"


def test_meta_document_keeps_filename_and_the_message_it_replies_to():
    [message] = meta_messages(DOCUMENT_PAYLOAD)
    assert message.body == "[document: statement-may.pdf]"
    assert message.media == (MediaLink("meta-media:2019473215342519", "application/pdf"),)
    assert message.source_details["filename"] == "statement-may.pdf"
    assert message.thread.in_reply_to == "wamid.EARLIER"


def test_meta_status_only_update_yields_no_messages():
    assert meta_messages(STATUS_PAYLOAD) == []


def test_meta_interactive_button_reply_uses_the_button_title():
    payload = cloud_api(
        {
            "contacts": CONTACTS,
            "messages": [
                {
                    "from": "16505551234",
                    "id": "wamid.BTN",
                    "timestamp": "1749416700",
                    "type": "interactive",
                    "interactive": {
                        "type": "button_reply",
                        "button_reply": {"id": "escalate", "title": "Talk to a person"},
                    },
                }
            ],
        }
    )
    [message] = meta_messages(payload)
    assert message.body == "Talk to a person"
    assert message.source_details["reply_id"] == "escalate"


def test_meta_webhook_for_another_object_is_a_format_error():
    with pytest.raises(WebhookFormatError, match="whatsapp_business_account"):
        meta_messages({**TEXT_PAYLOAD, "object": "page"})


def test_meta_message_without_sender_is_a_format_error():
    payload = copy.deepcopy(TEXT_PAYLOAD)
    del payload["entry"][0]["changes"][0]["value"]["messages"][0]["from"]
    with pytest.raises(WebhookFormatError, match="from"):
        meta_messages(payload)


def test_meta_message_with_bad_timestamp_is_a_format_error():
    payload = copy.deepcopy(TEXT_PAYLOAD)
    payload["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] = "yesterday"
    with pytest.raises(WebhookFormatError, match="timestamp"):
        meta_messages(payload)


def test_meta_entry_that_is_not_a_list_is_a_format_error():
    with pytest.raises(WebhookFormatError, match="entry"):
        meta_messages({"object": "whatsapp_business_account", "entry": {}})
