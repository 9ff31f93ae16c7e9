"""Crypto-shredding: personal fields sealed per customer; with the key gone they read as
erased while the sealed bytes, and any hash over them, stay the same."""

from __future__ import annotations

import hashlib
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from casetrail.contracts import personal

OPENED = "casetrail.case.opened.v1"
CONTACTS = "casetrail.customer.contact_updated.v1"


def test_a_sealed_field_opens_with_its_key_for_its_field_only():
    key = personal.new_data_key()
    sealed = personal.seal("Ann Smith", key, f"{OPENED}/subject")
    assert "Ann" not in sealed and personal.key_id_of(sealed) == key.key_id
    assert personal.unseal(sealed, key, f"{OPENED}/subject") == "Ann Smith"
    with pytest.raises(personal.SealError):
        personal.unseal(sealed, key, f"{OPENED}/description")  # moved to another field
    with pytest.raises(personal.SealError):
        personal.unseal(sealed, personal.new_data_key(), f"{OPENED}/subject")
    tampered = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(personal.SealError):
        personal.unseal(tampered, key, f"{OPENED}/subject")


@given(st.text(max_size=300))
def test_any_text_round_trips(text):
    key = personal.new_data_key()
    assert personal.unseal(personal.seal(text, key, "ctx"), key, "ctx") == text


def test_only_personal_fields_are_sealed_and_revealed():
    key = personal.new_data_key()
    data = {
        "case_id": "c1",
        "channel": "email",
        "subject": "Charged twice",
        "description": "Call me on 07700 900123",
        "customer_ref": "acct-1",
    }
    sealed = personal.seal_personal(OPENED, data, key)
    assert sealed["channel"] == "email" and sealed["case_id"] == "c1"
    assert sealed["customer_ref"] != "acct-1" and personal.is_sealed(sealed["customer_ref"])
    assert personal.is_sealed(sealed["subject"]) and personal.is_sealed(sealed["description"])
    assert personal.reveal_personal(OPENED, sealed, {key.key_id: key}) == data
    assert personal.seal_personal("casetrail.case.triaged.v1", data, key) == data


def test_only_the_personal_entries_of_a_channels_facts_are_sealed():
    key = personal.new_data_key()
    source = {"from": "whatsapp:+447700900123", "to": "+15005550006", "market": "GB"}
    sealed = personal.seal_personal(OPENED, {"source": source}, key)["source"]
    assert personal.is_sealed(sealed["from"])
    assert sealed["to"] == "+15005550006" and sealed["market"] == "GB"
    opened = personal.reveal_personal(OPENED, {"source": sealed}, {key.key_id: key})
    assert opened["source"] == source


def test_text_that_only_looks_sealed_is_sealed_too():
    key, other = personal.new_data_key(), personal.new_data_key()
    trick = personal.seal("Ann", other, f"{OPENED}/subject")  # a customer may write anything
    sealed = personal.seal_personal(OPENED, {"subject": trick}, key)
    assert personal.key_id_of(sealed["subject"]) == key.key_id
    assert personal.reveal_personal(OPENED, sealed, {key.key_id: key}) == {"subject": trick}


def test_a_value_that_does_not_open_is_unreadable_without_failing_the_event():
    key = personal.new_data_key()
    sealed = personal.seal_personal(OPENED, {"subject": "Ann", "description": "Hi"}, key)
    moved = {**sealed, "subject": sealed["description"]}  # a sealed value in another field
    shown = personal.reveal_personal(OPENED, moved, {key.key_id: key})
    assert shown == {"subject": personal.UNREADABLE, "description": "Hi"}


def test_contacts_inside_lists_are_sealed_one_by_one():
    key = personal.new_data_key()
    data = {
        "customer_id": "u1",
        "name": "Ann",
        "contacts": [{"kind": "email", "value": "ann@example.com"}],
        "added": [],
        "removed": [{"kind": "phone", "value": "+447700900123"}],
        "updated_by": "intake",
    }
    sealed = personal.seal_personal(CONTACTS, data, key)
    assert sealed["contacts"][0]["kind"] == "email"
    assert personal.is_sealed(sealed["contacts"][0]["value"])
    assert personal.is_sealed(sealed["removed"][0]["value"])
    assert personal.reveal_personal(CONTACTS, sealed, {key.key_id: key}) == data


def test_with_the_key_destroyed_fields_read_as_erased_and_the_bytes_hash_the_same():
    key = personal.new_data_key()
    sealed = personal.seal_personal(OPENED, {"subject": "Ann's refund", "channel": "sms"}, key)
    digest = hashlib.sha256(json.dumps(sealed, sort_keys=True).encode()).hexdigest()
    shredded = personal.reveal_personal(OPENED, sealed, {})
    assert shredded == {"subject": personal.ERASED, "channel": "sms"}
    assert hashlib.sha256(json.dumps(sealed, sort_keys=True).encode()).hexdigest() == digest


def test_a_data_key_is_stored_wrapped_under_the_master_key():
    master, other = bytes(range(32)), bytes(32)
    key = personal.new_data_key()
    wrapped = personal.wrap_key(key, master)
    assert key.secret not in wrapped
    assert personal.unwrap_key(key.key_id, wrapped, master) == key
    with pytest.raises(personal.SealError):
        personal.unwrap_key(key.key_id, wrapped, other)
    with pytest.raises(personal.SealError):
        personal.unwrap_key("another-id", wrapped, master)


def test_every_personal_field_names_a_text_field_of_its_event():
    from casetrail.contracts.events import EVENT_TYPES, ContactPoint

    for event_type, paths in personal.PERSONAL_FIELDS.items():
        model = EVENT_TYPES[event_type]
        for path in paths:
            field, _, inner = path.partition("[].")
            field = field.split(".", 1)[0]  # an entry of an object: the object is the field
            assert field in model.model_fields, (event_type, path)
            if inner:
                assert inner in ContactPoint.model_fields, (event_type, path)
