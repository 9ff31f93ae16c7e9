import json
from datetime import UTC, datetime
from uuid import uuid4

import pytest

from casetrail.contracts import events as ev
from casetrail.contracts import schemas
from casetrail.contracts.case import fold
from casetrail.contracts.envelope import Envelope, canonical_json


def opened_envelope(**data_overrides):
    case_id = uuid4()
    data = {
        "case_id": str(case_id),
        "channel": "email",
        "customer_ref": "acct-1",
        "subject": "Charged twice",
        "description": "I was charged twice for my plan.",
        "opened_at": "2026-11-23T10:00:00+00:00",
        **data_overrides,
    }
    return Envelope(
        id=uuid4(),
        source="/casetrail/intake",
        type=ev.CaseOpened.TYPE,
        time=datetime(2026, 11, 23, 10, tzinfo=UTC),
        subject=case_id,
        correlationid=uuid4(),
        sequence=1,
        data=data,
    )


@pytest.mark.parametrize("event_type", sorted(ev.EVENT_TYPES))
def test_published_schema_is_unchanged_or_compatible(event_type):
    published = schemas.published(event_type)
    assert published is not None, f"run `python -m casetrail.contracts.schemas` for {event_type}"
    assert schemas.breaking_changes(published, schemas.schema_of(event_type)) == []


def test_removing_a_field_is_a_breaking_change():
    old = schemas.schema_of(ev.CaseOpened.TYPE)
    new = json.loads(json.dumps(old))
    del new["properties"]["subject"]
    assert any("subject: removed" in p for p in schemas.breaking_changes(old, new))


def test_a_newly_required_field_is_a_breaking_change():
    old = schemas.schema_of(ev.CaseOpened.TYPE)
    new = json.loads(json.dumps(old))
    new["properties"]["priority"] = {"type": "string"}
    new["required"].append("priority")
    assert schemas.breaking_changes(old, new) == ["$.priority: newly required"]


def test_an_added_optional_field_is_compatible():
    old = schemas.schema_of(ev.CaseOpened.TYPE)
    new = json.loads(json.dumps(old))
    new["properties"]["language"] = {"type": "string"}
    assert schemas.breaking_changes(old, new) == []


def test_a_retyped_field_is_a_breaking_change():
    old = schemas.schema_of(ev.ClockStarted.TYPE)
    new = json.loads(json.dumps(old))
    new["properties"]["target_minutes"] = {"type": "string"}
    assert schemas.breaking_changes(old, new) == [
        "$.target_minutes: type 'integer' became 'string'"
    ]


def test_an_old_version_is_upcast_to_the_current_model():
    @ev.upcaster("casetrail.case.opened.v0", ev.CaseOpened.TYPE)
    def rename_customer(data):
        data = dict(data)
        data["customer_ref"] = data.pop("customer")
        return data

    try:
        envelope = opened_envelope()
        old_data = dict(envelope.data)
        old_data["customer"] = old_data.pop("customer_ref")
        old = envelope.model_copy(update={"type": "casetrail.case.opened.v0", "data": old_data})
        payload = ev.read_data(old)
        assert isinstance(payload, ev.CaseOpened)
        assert payload.customer_ref == "acct-1"
    finally:
        ev.UPCASTERS.pop("casetrail.case.opened.v0")


def test_unknown_type_and_bad_data_are_contract_errors():
    with pytest.raises(ev.ContractError, match="unknown event type"):
        ev.read_data(opened_envelope().model_copy(update={"type": "casetrail.nope.v1"}))
    with pytest.raises(ev.ContractError):
        ev.read_data(opened_envelope(channel="carrier-pigeon"))
    with pytest.raises(ev.ContractError, match="not a Casetrail CloudEvent"):
        ev.parse(b"{not json")


def test_subject_must_name_the_same_case_as_the_data():
    envelope = opened_envelope()
    with pytest.raises(ev.ContractError, match="different streams"):
        ev.read_data(envelope.model_copy(update={"subject": uuid4()}))


def test_envelope_bytes_are_canonical_and_round_trip():
    envelope = opened_envelope()
    raw = envelope.to_bytes()
    assert raw == canonical_json(json.loads(raw))
    assert Envelope.from_bytes(raw) == envelope


def test_money_is_integer_minor_units():
    with pytest.raises(ValueError):
        ev.Money(amount_minor=12.5, currency="USD")
    with pytest.raises(ValueError):
        ev.Money(amount_minor=100, currency="usd")


def test_folding_the_same_history_twice_gives_identical_state():
    envelope = opened_envelope()
    first = canonical_json(fold([envelope]).to_json_dict())
    second = canonical_json(fold([envelope]).to_json_dict())
    assert first == second
    assert fold([envelope]).channel == "email"
