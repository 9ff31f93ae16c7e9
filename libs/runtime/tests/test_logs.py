import json
import logging

from casetrail.runtime.logs import configure_logging, log, scrub


def test_contact_details_and_query_strings_are_scrubbed():
    line = '127.0.0.1:5 - "GET /v1/webhooks/meta?hub.verify_token=s3cret HTTP/1.1" 200'
    assert scrub(line) == '127.0.0.1:5 - "GET /v1/webhooks/meta?[query] HTTP/1.1" 200'
    assert scrub("from jane.doe+x@mail.example.com") == "from [email]"
    assert scrub("whatsapp:+447700900123 wrote") == "whatsapp:[phone] wrote"


def test_offsets_ids_and_times_are_left_alone():
    text = "offset 12345678 at 2026-11-23T17:37:11.337633Z id 74bdc374-9a3e-578e-b547-9aa173a96c76"
    assert scrub(text) == text


def test_every_log_line_is_scrubbed_even_from_exceptions(capsys):
    configure_logging("test")
    try:
        raise ValueError("bad input from ann@example.com")
    except ValueError:
        log.exception("request_failed", caller="+14155550100")
    logging.getLogger("uvicorn.access").info('"GET /v1/x?email=ann@example.com HTTP/1.1" 200')
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    text = json.dumps(lines)
    assert "ann@example.com" not in text and "+14155550100" not in text
    assert lines[0]["caller"] == "[phone]"
