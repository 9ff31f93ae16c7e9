import csv
import dataclasses
import io
import json
import re
from datetime import UTC, date, time
from pathlib import Path

import pytest

from casetrail.contracts.events import Channel
from casetrail.intake.cfpb import (
    BODY_MAX,
    RegulatorComplaint,
    RowError,
    read_any,
    read_csv,
    read_json,
    to_inbound,
)

HEADER = [
    "Date received",
    "Product",
    "Sub-product",
    "Issue",
    "Sub-issue",
    "Consumer complaint narrative",
    "Company public response",
    "Company",
    "State",
    "ZIP code",
    "Tags",
    "Consumer consent provided?",
    "Submitted via",
    "Date sent to company",
    "Company response to consumer",
    "Timely response?",
    "Consumer disputed?",
    "Complaint ID",
]
FIELD_MESSAGE = re.compile(r"^[a-z_]+: \S")
CSV_ROWS = 6623
CSV_WITH_NEWLINES = 602
CSV_BOTH_TAGS = 73


def row(changes: dict[str, str] | None = None, /, **named: str) -> list[str]:
    """A CSV row like the export's; `Complaint_ID="2"` sets the "Complaint ID" column."""
    values = {
        "Date received": "2019-09-23",
        "Product": "Mortgage",
        "Sub-product": "Conventional home mortgage",
        "Issue": "Struggling to pay mortgage",
        "Company": "OCWEN FINANCIAL CORPORATION",
        "Timely response?": "Yes",
        "Consumer disputed?": "N/A",
        "Complaint ID": "3383698",
    }
    values.update(changes or {})
    values.update({k.replace("_", " "): v for k, v in named.items()})
    return [values.get(h, "") for h in HEADER]


def csv_text(*rows: list[str], header: list[str] = HEADER) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def parse_csv(text: str) -> list:
    return list(read_csv(io.StringIO(text, newline="")))


@pytest.fixture(scope="module")
def csv_path(shared_data: Path) -> Path:
    return shared_data / "cfpb" / "complaints_sample.csv"


@pytest.fixture(scope="module")
def csv_items(csv_path: Path) -> list:
    with csv_path.open(newline="", encoding="utf-8") as f:
        return list(read_csv(f))


@pytest.fixture(scope="module")
def csv_records(csv_path: Path) -> list[dict[str, str]]:
    with csv_path.open(newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def ndjson_items(shared_data: Path) -> list:
    path = shared_data / "cfpb" / "cfpb_ccdb-data-pipeline__from_s3.ndjson"
    return list(read_any(path.read_bytes(), "application/x-ndjson"))


def complaints(items: list) -> list[RegulatorComplaint]:
    return [i for i in items if isinstance(i, RegulatorComplaint)]


def errors(items: list) -> list[RowError]:
    return [i for i in items if isinstance(i, RowError)]


# --- the real CSV export ---------------------------------------------------------------


def test_every_csv_data_row_yields_exactly_one_complaint_or_error(csv_items, csv_records):
    assert len(csv_records) == CSV_ROWS
    assert len(csv_items) == len(csv_records)
    assert (len(complaints(csv_items)), len(errors(csv_items))) == (CSV_ROWS, 0)


def test_csv_complaints_keep_the_exports_ids_in_order(csv_items, csv_records):
    assert [c.complaint_id for c in csv_items] == [r["Complaint ID"] for r in csv_records]


def test_csv_multiline_narratives_survive_unchanged(csv_items, csv_records):
    by_id = {c.complaint_id: c for c in complaints(csv_items)}
    multiline = [r for r in csv_records if "\n" in r["Consumer complaint narrative"]]
    assert len(multiline) == CSV_WITH_NEWLINES
    for record in multiline:
        narrative = record["Consumer complaint narrative"]
        assert by_id[record["Complaint ID"]].narrative == narrative.strip()


def test_csv_empty_cells_become_none_and_na_dispute_becomes_none(csv_items):
    first = csv_items[0]
    assert first.narrative is None
    assert first.consumer_disputed is None
    assert {c.consumer_disputed for c in csv_items} == {None, True, False}
    assert {c.timely for c in csv_items} == {True, False}


def test_csv_combined_tags_split_into_two(csv_items):
    both = [c for c in csv_items if len(c.tags) == 2]
    assert len(both) == CSV_BOTH_TAGS
    assert {c.tags for c in both} == {("Older American", "Servicemember")}
    assert {t for c in csv_items for t in c.tags} == {"Older American", "Servicemember"}


def test_to_inbound_never_gives_an_empty_body_or_a_naive_time(csv_items):
    for complaint in complaints(csv_items):
        message = to_inbound(complaint)
        assert message.body.strip() and len(message.body) <= BODY_MAX
        assert message.sent_at.tzinfo is UTC and message.sent_at.time() == time(0)
        assert message.sent_at.date() == complaint.date_received
        assert message.subject and len(message.subject) <= 500
        assert message.channel is Channel.REGULATORY
        json.dumps(message.source_details)


def test_to_inbound_keeps_the_longest_real_narrative_whole(csv_items):
    longest = max(csv_items, key=lambda c: len(c.narrative or ""))
    assert longest.complaint_id == "3439091" and len(longest.narrative) > 20_000
    message = to_inbound(longest)
    assert message.body == longest.narrative
    assert message.source_details["narrative_truncated"] is False


def test_to_inbound_maps_identity_subject_and_details():
    (complaint,) = parse_csv(csv_text(row(Tags="Older American, Servicemember")))
    message = to_inbound(complaint)
    assert message.provider == "cfpb"
    assert message.provider_message_id == "cfpb:3383698"
    assert (message.sender.kind, message.sender.value) == ("account", "cfpb:3383698")
    assert message.sender_name is None
    assert message.subject == "Mortgage: Struggling to pay mortgage"
    assert "Conventional home mortgage" in message.body
    assert "OCWEN FINANCIAL CORPORATION" in message.body
    details = message.source_details
    assert details["agency"] == "CFPB" and details["agency_complaint_id"] == "3383698"
    assert details["tags"] == ["Older American", "Servicemember"]
    assert details["timely"] is True and details["consumer_disputed"] is None


def test_to_inbound_uses_the_narrative_as_the_body_when_there_is_one():
    (complaint,) = parse_csv(csv_text(row(Consumer_complaint_narrative="Line one.\nLine two.")))
    assert to_inbound(complaint).body == "Line one.\nLine two."


# --- the pipeline's NDJSON -------------------------------------------------------------


def test_ndjson_every_line_is_accounted_for(ndjson_items):
    assert len(ndjson_items) == 10
    assert (len(complaints(ndjson_items)), [e.row for e in errors(ndjson_items)]) == (9, [10])


def test_ndjson_null_date_received_is_refused_naming_the_field(ndjson_items):
    assert ndjson_items[9] == RowError(10, "3202118", ("date_received: missing",))


def test_ndjson_legacy_public_id_stands_in_for_the_missing_complaint_id(ndjson_items):
    third = ndjson_items[2]
    assert isinstance(third, RegulatorComplaint)
    assert third.complaint_id == "3230138"


def test_ndjson_values_are_normalised(ndjson_items):
    first, fifth, sixth, seventh = (ndjson_items[i] for i in (0, 4, 5, 6))
    assert first.sub_issue is None and first.narrative is None and first.tags == ()
    assert first.consumer_consent is None and first.consumer_disputed is None
    assert first.company_response == "In progress" and first.timely is True
    assert fifth.tags == ("Servicemember",)
    # sent to the company eight weeks after the CFPB received it: kept, not "corrected"
    assert (sixth.date_received, sixth.date_sent_to_company) == (
        date(2019, 7, 17),
        date(2019, 9, 11),
    )
    assert seventh.consumer_consent == "N/A" and seventh.submitted_via == "Postal mail"


# --- the public API's search response --------------------------------------------------


def test_api_detail_response_parses_its_source(shared_data):
    path = shared_data / "cfpb" / "cfpb_ccdb5-ui__get-detail.json"
    with path.open(encoding="utf-8") as f:
        (complaint,) = read_json(f)
    assert complaint.complaint_id == "3146099"
    # "2019-02-07T12:00:00-05:00" is the pipeline's noon-Eastern stamp for that calendar day
    assert complaint.date_received == date(2019, 2, 7)
    assert complaint.date_sent_to_company == date(2019, 2, 7)
    assert complaint.tags == () and complaint.company_public_response is None
    assert complaint.narrative.startswith("my card has been declined")
    assert "\n\nEach time I call" in complaint.narrative
    assert complaint.sub_issue == "Can't use card to make purchases"


def test_api_hit_id_stands_in_when_the_source_has_no_complaint_id():
    response = {"hits": {"hits": [{"_id": "42", "_source": {"date_received": "2020-01-02"}}]}}
    (complaint,) = read_json(json.dumps(response))
    assert complaint.complaint_id == "42"


def test_api_hit_without_a_source_is_a_row_error():
    response = {"hits": {"hits": [{"_id": "42"}]}}
    assert list(read_json(json.dumps(response))) == [
        RowError(1, None, ("row: expected a JSON object, got null",))
    ]


# --- JSON shapes ------------------------------------------------------------------------


def test_json_array_and_single_object_both_parse():
    record = {"complaint_id": 7, "date_received": "2020-01-02"}
    array = json.dumps([record, record | {"complaint_id": 8}])
    assert [c.complaint_id for c in read_json(array)] == ["7", "8"]
    (single,) = read_json(json.dumps(record, indent=2))
    assert single.complaint_id == "7"


def test_ndjson_bad_line_and_non_object_are_row_errors_in_place():
    text = '{"complaint_id":"1","date_received":"2020-01-02"}\n{oops\n\n[1]\n'
    items = list(read_json(text))
    assert isinstance(items[0], RegulatorComplaint)
    assert items[1].row == 2 and items[1].errors[0].startswith("row: not valid JSON")
    assert items[2] == RowError(4, None, ("row: expected a JSON object, got array",))


def test_broken_json_document_is_one_input_error():
    items = list(read_json('[{"complaint_id": "1",'))
    assert len(items) == 1 and items[0].row == 0
    assert items[0].errors[0].startswith("input: not valid JSON")


def test_json_wrong_types_are_named():
    record = {"complaint_id": True, "date_received": 20200102, "zip_code": 2901, "timely": "maybe"}
    (error,) = read_json(json.dumps(record))
    assert error.errors == (
        "complaint_id: expected text, got bool",
        "date_received: expected text, got int",
        "zip_code: expected text, got int",
        "timely: expected Yes, No or N/A, got 'maybe'",
    )


# --- refused rows -------------------------------------------------------------------------


def test_duplicate_complaint_id_is_refused_naming_the_first_row():
    items = parse_csv(csv_text(row(), row(Complaint_ID="2"), row()))
    assert [type(i) for i in items] == [RegulatorComplaint, RegulatorComplaint, RowError]
    assert items[2] == RowError(3, "3383698", ("complaint_id: duplicate of row 1",))


def test_duplicate_in_json_is_refused_too():
    record = {"complaint_id": "5", "date_received": "2020-01-02"}
    items = list(read_json("\n".join(json.dumps(record) for _ in range(2))))
    assert items[1] == RowError(2, "5", ("complaint_id: duplicate of row 1",))


def test_wrong_column_count_is_a_row_error():
    items = parse_csv(csv_text(row()[:-1], [*row(), "extra"], row()))
    assert items[0] == RowError(1, None, ("row: has 17 columns, the header has 18",))
    assert items[1] == RowError(2, None, ("row: has 19 columns, the header has 18",))
    assert isinstance(items[2], RegulatorComplaint)


def test_bad_values_are_all_reported_each_naming_its_field():
    items = parse_csv(
        csv_text(
            row(Complaint_ID="", Date_received=""),
            row(Complaint_ID="12a", Date_received="2019-02-30"),
            row(Date_received="1999-01-01", Date_sent_to_company="soon"),
            row({"Timely response?": "Perhaps", "Consumer disputed?": "Maybe"}),
        )
    )
    assert [e.errors for e in items] == [
        ("complaint_id: missing", "date_received: missing"),
        ("complaint_id: expected digits, got '12a'", "date_received: not a date: '2019-02-30'"),
        (
            "date_received: 1999-01-01 is before the CFPB took complaints",
            "date_sent_to_company: not a date: 'soon'",
        ),
        (
            "timely: expected Yes, No or N/A, got 'Perhaps'",
            "consumer_disputed: expected Yes, No or N/A, got 'Maybe'",
        ),
    ]
    assert [e.complaint_id for e in items] == [None, "12a", "3383698", "3383698"]
    assert all(FIELD_MESSAGE.match(m) for e in items for m in e.errors)


def test_older_us_date_format_is_accepted():
    (complaint,) = parse_csv(csv_text(row(Date_received="03/12/2014")))
    assert complaint.date_received == date(2014, 3, 12)


def test_stray_quote_is_a_row_error_and_reading_goes_on():
    bad_line = '"x"y,' + ",".join([""] * 17) + "\n"
    next_row = csv_text(row(Complaint_ID="9")).split("\n", 1)[1]
    items = parse_csv(csv_text(row()) + bad_line + next_row)
    assert isinstance(items[0], RegulatorComplaint)
    assert items[1] == RowError(2, None, ("row: unreadable CSV: ',' expected after '\"'",))
    assert items[2].complaint_id == "9" and len(items) == 3


def test_every_row_error_message_names_a_field(ndjson_items):
    fields = {f.name for f in dataclasses.fields(RegulatorComplaint)} | {"row", "input"}
    record = {"complaint_id": "1", "date_received": "2020-01-02"}
    refused = errors(
        [
            *ndjson_items,
            *parse_csv(csv_text(row()[:-1], row(Complaint_ID="x", Date_received="2019-13-01"))),
            *parse_csv(csv_text(row(), row())),
            *read_json(json.dumps([record, record, 3, {"tags": 5, "timely": [], "state": 1}])),
            *read_json("{\n"),
            *read_any(b"\x80", None),
        ]
    )
    assert len(refused) == 9
    for error in refused:
        assert error.errors
        for message in error.errors:
            assert FIELD_MESSAGE.match(message) and message.split(":")[0] in fields, message


# --- read_any ------------------------------------------------------------------------------


def test_undecodable_bytes_are_one_input_error():
    (error,) = read_any(b"Complaint ID\n\xff\xfe1\n", "text/csv")
    assert error.row == 0 and error.complaint_id is None
    assert error.errors == ("input: not UTF-8 text (byte 0xff at 13)",)


def test_read_any_strips_a_byte_order_mark_from_the_csv_header():
    (complaint,) = read_any(b"\xef\xbb\xbf" + csv_text(row()).encode(), "text/csv; charset=utf-8")
    assert complaint.date_received == date(2019, 9, 23)


def test_read_any_sniffs_the_format_without_a_content_type():
    record = json.dumps({"complaint_id": "1", "date_received": "2020-01-02"})
    assert isinstance(next(read_any(f"  \n{record}".encode(), None)), RegulatorComplaint)
    assert isinstance(next(read_any(csv_text(row()).encode(), None)), RegulatorComplaint)
    assert isinstance(next(read_any(record.encode(), "application/json")), RegulatorComplaint)


def test_read_any_real_files_count(shared_data):
    folder = shared_data / "cfpb"
    counts = {
        name: (len(complaints(items)), len(errors(items)))
        for name in (
            "complaints_sample.csv",
            "cfpb_ccdb-data-pipeline__from_s3.ndjson",
            "cfpb_ccdb5-ui__get-detail.json",
        )
        for items in [list(read_any((folder / name).read_bytes(), None))]
    }
    assert counts == {
        "complaints_sample.csv": (CSV_ROWS, 0),
        "cfpb_ccdb-data-pipeline__from_s3.ndjson": (9, 1),
        "cfpb_ccdb5-ui__get-detail.json": (1, 0),
    }
