"""The customer's record: contacts change by events, and erasure ends the record's
personal data for good. Pure domain, no infrastructure."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from casetrail.intake.domain import (
    CustomerAlreadyErased,
    change_contacts,
    record_erasure,
    register_customer,
)
from casetrail.intake.inbound import Contact

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
PHONE = Contact.normalised("phone", "+14155550100")


def test_customers_with_the_same_contact_are_not_given_the_same_id():
    # Once a customer is erased, whoever writes from their old number is someone new.
    first = register_customer([PHONE], "Ann", "channel:sms", NOW)
    second = register_customer([PHONE], "Ann", "channel:sms", NOW)
    assert first.id != second.id


def test_erasure_forgets_name_and_contacts_and_is_recorded_once():
    customer = register_customer([PHONE], "Ann", "channel:sms", NOW)
    assert record_erasure(customer, key_ids=("k1",), reason="GDPR 17", erased_by="dpo", now=NOW)
    assert customer.name is None and customer.contacts == [] and customer.erased_at == NOW
    assert not record_erasure(customer, key_ids=("k1",), reason="again", erased_by="dpo", now=NOW)
    erased = [e for e in customer.collect_events() if type(e).__name__ == "Erased"]
    assert len(erased) == 1 and erased[0].key_ids == ["k1"]


def test_an_erased_customer_takes_no_new_contacts():
    customer = register_customer([PHONE], "Ann", "channel:sms", NOW)
    record_erasure(customer, key_ids=("k1",), reason="GDPR 17", erased_by="dpo", now=NOW)
    with pytest.raises(CustomerAlreadyErased):
        change_contacts(
            customer, add=[Contact.normalised("email", "a@example.com")], updated_by="x", now=NOW
        )
