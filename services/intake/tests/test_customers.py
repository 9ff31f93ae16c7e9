"""The customer's record: contacts change by events, and erasure ends the record's
personal data for good. Pure domain, no infrastructure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casetrail.intake.domain import (
    Customer,
    CustomerAlreadyErased,
    change_contacts,
    customer_id_for,
    record_erasure,
    register_customer,
)
from casetrail.intake.inbound import Contact

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PHONE = Contact.normalised("phone", "+14155550100")


def test_a_contact_names_one_new_customer_per_generation():
    # Racing first messages agree on who registers; after an erasure, the next one is new.
    assert customer_id_for(PHONE) == customer_id_for(Contact.normalised("phone", "+14155550100"))
    assert customer_id_for(PHONE, 1) not in (customer_id_for(PHONE), customer_id_for(PHONE, 2))


def new_customer() -> Customer:
    return register_customer(customer_id_for(PHONE), [PHONE], "Ann", "channel:sms", NOW)


def test_erasure_forgets_name_and_contacts_and_is_recorded_once():
    customer = new_customer()
    assert record_erasure(customer, key_ids=("k1",), reason="GDPR 17", erased_by="dpo", now=NOW)
    assert customer.name is None and customer.contacts == [] and customer.erased_at == NOW
    assert not record_erasure(customer, key_ids=("k1",), reason="again", erased_by="dpo", now=NOW)
    erased = [e for e in customer.collect_events() if type(e).__name__ == "Erased"]
    assert len(erased) == 1 and erased[0].key_ids == ["k1"]


def test_an_erased_customer_takes_no_new_contacts():
    customer = new_customer()
    record_erasure(customer, key_ids=("k1",), reason="GDPR 17", erased_by="dpo", now=NOW)
    with pytest.raises(CustomerAlreadyErased):
        change_contacts(
            customer, add=[Contact.normalised("email", "a@example.com")], updated_by="x", now=NOW
        )
