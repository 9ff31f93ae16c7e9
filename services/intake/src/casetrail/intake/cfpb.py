"""CFPB Consumer Complaint Database exports (CSV, NDJSON, API JSON) parsed for intake."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, TextIO

from casetrail.contracts.events import Channel
from casetrail.intake.inbound import Contact, InboundMessage

SUBJECT_MAX = 500
BODY_MAX = 100_000
# The CFPB opened its complaint intake on 2011-07-21; an earlier date is a typo, not a complaint.
EARLIEST_DATE = date(2011, 7, 21)

_CSV_TYPES = {"text/csv", "application/csv", "text/comma-separated-values"}
_JSON_TYPES = {
    "application/json",
    "text/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
}


@dataclass(frozen=True, slots=True)
class RegulatorComplaint:
    complaint_id: str
    date_received: date
    date_sent_to_company: date | None = None
    product: str | None = None
    sub_product: str | None = None
    issue: str | None = None
    sub_issue: str | None = None
    narrative: str | None = None
    company_public_response: str | None = None
    company: str | None = None
    state: str | None = None
    zip_code: str | None = None
    tags: tuple[str, ...] = ()
    consumer_consent: str | None = None
    submitted_via: str | None = None
    company_response: str | None = None
    timely: bool | None = None
    consumer_disputed: bool | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    """A row refused: `row` is the 1-based data row (the line for NDJSON; 0 for the whole input).

    Each message starts with the field it is about, e.g. "date_received: missing".
    """

    row: int
    complaint_id: str | None
    errors: tuple[str, ...]


ParsedRow = RegulatorComplaint | RowError


def _norm(key: str) -> str:
    # One spelling for the CSV header ("Sub-product"), the JSON key ("sub_product") and a BOM'd
    # or re-cased variant of either, so both formats share one table of names.
    return re.sub(r"[^a-z0-9]", "", key.lower())


# Each field's accepted source names, in priority order. `public_id` is the older name of the
# complaint id, which the CFPB's own pipeline still falls back to when `complaint_id` is absent.
_SOURCES: dict[str, tuple[str, ...]] = {
    name: tuple(_norm(k) for k in keys)
    for name, keys in {
        "complaint_id": ("Complaint ID", "complaint_id", "public_id"),
        "date_received": ("Date received",),
        "date_sent_to_company": ("Date sent to company",),
        "product": ("Product",),
        "sub_product": ("Sub-product",),
        "issue": ("Issue",),
        "sub_issue": ("Sub-issue",),
        "narrative": ("Consumer complaint narrative", "complaint_what_happened"),
        "company_public_response": ("Company public response",),
        "company": ("Company",),
        "state": ("State",),
        "zip_code": ("ZIP code",),
        "tags": ("Tags",),
        "consumer_consent": ("Consumer consent provided?",),
        "submitted_via": ("Submitted via",),
        "company_response": ("Company response to consumer", "company_response"),
        "timely": ("Timely response?", "timely"),
        "consumer_disputed": ("Consumer disputed?",),
    }.items()
}


class _Invalid(ValueError):
    """A field's value cannot be used; the message names the field."""


def _pick(record: Mapping[str, Any], name: str) -> Any:
    for key in _SOURCES[name]:
        value = record.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(name: str, value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Invalid(f"{name}: expected text, got {type(value).__name__}")
    return value.strip() or None


def _complaint_id(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    text = _text("complaint_id", value)
    if text is None:
        raise _Invalid("complaint_id: missing")
    if not text.isascii() or not text.isdigit():
        raise _Invalid(f"complaint_id: expected digits, got {text!r}")
    return text


def _date(name: str, value: Any) -> date | None:
    text = _text(name, value)
    if text is None:
        return None
    try:
        if "/" in text:  # older CFPB exports wrote dates as MM/DD/YYYY
            parsed = datetime.strptime(text, "%m/%d/%Y").date()
        elif len(text) > 10:
            # The public API stamps each day at noon US Eastern ("2019-02-07T12:00:00-05:00"):
            # the calendar date as written is the one the agency meant, so no zone conversion.
            parsed = datetime.fromisoformat(text).date()
        else:
            parsed = date.fromisoformat(text)
    except ValueError:
        raise _Invalid(f"{name}: not a date: {text!r}") from None
    if parsed < EARLIEST_DATE:
        raise _Invalid(f"{name}: {parsed.isoformat()} is before the CFPB took complaints")
    return parsed


def _yes_no(name: str, value: Any) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    text = (_text(name, value) or "n/a").lower()
    # "N/A" is the CFPB's own value for "not asked" (disputes were dropped in 2017).
    if text not in ("yes", "no", "n/a"):
        raise _Invalid(f"{name}: expected Yes, No or N/A, got {value!r}")
    return None if text == "n/a" else text == "yes"


def _tags(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    parts = value.split(",") if isinstance(value, str) else value
    if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
        raise _Invalid(f"tags: expected comma-separated text, got {type(value).__name__}")
    return tuple(p.strip() for p in parts if p.strip())


def _required_date(value: Any) -> date:
    parsed = _date("date_received", value)
    if parsed is None:
        raise _Invalid("date_received: missing")
    return parsed


def _parse(record: Mapping[str, Any]) -> RegulatorComplaint | list[str]:
    """One record (keys already `_norm`-ed) as a complaint, or every problem found in it."""
    converters: dict[str, Any] = {
        "complaint_id": _complaint_id,
        "date_received": _required_date,
        "date_sent_to_company": lambda v: _date("date_sent_to_company", v),
        "tags": _tags,
        "timely": lambda v: _yes_no("timely", v),
        "consumer_disputed": lambda v: _yes_no("consumer_disputed", v),
    }
    values: dict[str, Any] = {}
    errors: list[str] = []
    # Every field is checked, not just up to the first failure, so one pass fixes a row.
    for name in _SOURCES:
        convert = converters.get(name, lambda v, name=name: _text(name, v))
        try:
            values[name] = convert(_pick(record, name))
        except _Invalid as problem:
            errors.append(str(problem))
    return errors or RegulatorComplaint(**values)


def _raw_id(record: Mapping[str, Any]) -> str | None:
    # Whatever the row says its id is, even an invalid one, helps find the row in the source.
    value = _pick(record, "complaint_id")
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value.strip() or None if isinstance(value, str) else None


class _Batch:
    """Turns parsed records into output rows, refusing a complaint id already accepted."""

    def __init__(self) -> None:
        self._first_row: dict[str, int] = {}

    def row(self, number: int, record: Mapping[str, Any]) -> ParsedRow:
        parsed = _parse(record)
        if isinstance(parsed, list):
            return RowError(number, _raw_id(record), tuple(parsed))
        first = self._first_row.setdefault(parsed.complaint_id, number)
        if first != number:
            message = f"complaint_id: duplicate of row {first}"
            return RowError(number, parsed.complaint_id, (message,))
        return parsed


def _normalised(obj: Mapping[str, Any]) -> dict[str, Any]:
    return {_norm(str(k)): v for k, v in obj.items()}


def read_csv(stream: TextIO) -> Iterator[ParsedRow]:
    """Rows of a CFPB CSV export (header row first); blank lines are not rows."""
    # strict: a stray quote is reported on its row instead of silently swallowing the next ones.
    reader = csv.reader(stream, strict=True)
    batch = _Batch()
    header: list[str] | None = None
    number = 0
    while True:
        try:
            fields = next(reader)
        except StopIteration:
            return
        except csv.Error as problem:
            if header is None:
                yield RowError(0, None, (f"header: unreadable CSV: {problem}",))
                return
            number += 1
            yield RowError(number, None, (f"row: unreadable CSV: {problem}",))
            continue
        if not fields:
            continue
        if header is None:
            header = [_norm(h) for h in fields]
            continue
        number += 1
        if len(fields) != len(header):
            message = f"row: has {len(fields)} columns, the header has {len(header)}"
            yield RowError(number, None, (message,))
            continue
        yield batch.row(number, dict(zip(header, fields, strict=True)))


def _object_rows(items: Iterable[tuple[int, Any]]) -> Iterator[ParsedRow]:
    batch = _Batch()
    for number, item in items:
        if isinstance(item, dict):
            yield batch.row(number, _normalised(item))
        elif isinstance(item, _BadLine):
            yield RowError(number, None, (f"row: not valid JSON: {item.problem.msg}",))
        else:
            yield RowError(number, None, (f"row: expected a JSON object, got {_json_kind(item)}",))


def _json_kind(value: Any) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), "null" if value is None else "number"
    )


def _hit_sources(hits: list[Any]) -> Iterator[tuple[int, Any]]:
    # The search API's documents are `_source`; its `_id` is the complaint id the pipeline indexed
    # it under, so it stands in when the document itself lacks one.
    for number, hit in enumerate(hits, start=1):
        source = hit.get("_source") if isinstance(hit, dict) else None
        if isinstance(source, dict) and "_id" in hit:
            source = {"complaint_id": hit["_id"], **source}
        yield number, source


def _ndjson_lines(text: str) -> Iterator[tuple[int, Any]] | None:
    """Each non-blank line's object, or None when even the first line is not JSON."""
    lines = [(n, line) for n, line in enumerate(text.splitlines(), start=1) if line.strip()]
    try:
        json.loads(lines[0][1])
    except json.JSONDecodeError:
        return None
    return ((n, _line_value(line)) for n, line in lines)


class _BadLine:
    """An NDJSON line that is not JSON: still a row, reported in its place."""

    def __init__(self, problem: json.JSONDecodeError) -> None:
        self.problem = problem


def _line_value(line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as problem:
        return _BadLine(problem)


def read_json(source: str | bytes | TextIO) -> Iterator[ParsedRow]:
    """NDJSON, a JSON array of objects, one object, or a search response (hits.hits[]._source)."""
    if isinstance(source, bytes):
        yield from read_any(source, "application/json")
        return
    text = source if isinstance(source, str) else source.read()
    text = text.removeprefix("\ufeff").strip()
    if not text:
        return
    if text[0] not in "[{":
        yield RowError(0, None, ("input: not JSON (expected an object, an array or NDJSON)",))
        return
    try:
        document = json.loads(text)
    except json.JSONDecodeError as problem:
        lines = _ndjson_lines(text) if text[0] == "{" else None
        if lines is None:
            yield RowError(0, None, (f"input: not valid JSON: {problem}",))
        else:
            yield from _object_rows(lines)
        return
    yield from _document_rows(document)


def _document_rows(document: Any) -> Iterator[ParsedRow]:
    if isinstance(document, list):
        yield from _object_rows(enumerate(document, start=1))
    elif isinstance(document.get("hits"), dict) and "hits" in document["hits"]:
        hits = document["hits"]["hits"]
        if not isinstance(hits, list):
            yield RowError(0, None, ("input: hits.hits is not an array",))
            return
        yield from _object_rows(_hit_sources(hits))
    else:
        yield from _object_rows([(1, document)])


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def read_any(data: bytes, content_type: str | None) -> Iterator[ParsedRow]:
    """CSV or JSON by content type, else by the first non-blank character; UTF-8 only."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as problem:
        message = f"input: not UTF-8 text (byte {data[problem.start]:#04x} at {problem.start})"
        yield RowError(0, None, (message,))
        return
    media_type = _media_type(content_type)
    is_json = media_type in _JSON_TYPES or media_type.endswith("+json")
    if media_type not in _CSV_TYPES and not is_json:
        is_json = text.lstrip()[:1] in ("{", "[")
    if is_json:
        yield from read_json(text)
    else:
        yield from read_csv(io.StringIO(text, newline=""))


def _summary(complaint: RegulatorComplaint) -> str:
    # The CFPB publishes a narrative only with the consumer's consent, so most complaints have
    # none; the case still needs a description, made only of what the agency recorded.
    facts = [
        ("Product", complaint.product),
        ("Sub-product", complaint.sub_product),
        ("Issue", complaint.issue),
        ("Sub-issue", complaint.sub_issue),
        ("Company", complaint.company),
    ]
    lines = [f"CFPB complaint {complaint.complaint_id} (no consumer narrative published)."]
    lines += [f"{label}: {value}" for label, value in facts if value]
    return "\n".join(lines)


def _subject(complaint: RegulatorComplaint) -> str | None:
    subject = ": ".join(part for part in (complaint.product, complaint.issue) if part)
    return subject[:SUBJECT_MAX] or None


def _source_details(complaint: RegulatorComplaint) -> dict[str, Any]:
    sent = complaint.date_sent_to_company
    return {
        "agency": "CFPB",
        "agency_complaint_id": complaint.complaint_id,
        "product": complaint.product,
        "sub_product": complaint.sub_product,
        "issue": complaint.issue,
        "sub_issue": complaint.sub_issue,
        "company": complaint.company,
        "state": complaint.state,
        "zip_code": complaint.zip_code,
        "tags": list(complaint.tags),
        "submitted_via": complaint.submitted_via,
        "date_sent_to_company": sent.isoformat() if sent else None,
        "company_response": complaint.company_response,
        "company_public_response": complaint.company_public_response,
        "consumer_consent": complaint.consumer_consent,
        "timely": complaint.timely,
        "consumer_disputed": complaint.consumer_disputed,
        # The body holds at most BODY_MAX characters; say so rather than cut text unnoticed.
        "narrative_truncated": len(complaint.narrative or "") > BODY_MAX,
    }


def to_inbound(complaint: RegulatorComplaint) -> InboundMessage:
    """The complaint as an inbound regulatory message.

    The CFPB export is anonymised, so the agency's complaint id stands in for the customer.
    """
    agency_id = f"cfpb:{complaint.complaint_id}"
    return InboundMessage(
        channel=Channel.REGULATORY,
        provider="cfpb",
        provider_message_id=agency_id,
        sender=Contact("account", agency_id),
        sender_name=None,
        subject=_subject(complaint),
        body=(complaint.narrative or _summary(complaint))[:BODY_MAX],
        sent_at=datetime.combine(complaint.date_received, time(0), tzinfo=UTC),
        source_details=_source_details(complaint),
    )
