"""Intake's erasure against a real PostgreSQL and keyring: an erasure cut short after its
key was destroyed is finished by the next message that meets it."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

import pytest

from casetrail.contracts.events import Channel
from casetrail.intake.domain import message_fingerprint
from casetrail.intake.inbound import Contact, InboundMessage
from casetrail.intake.policy import load_policy
from casetrail.intake.store import IntakeApplication
from casetrail.runtime.keyring import Keyring, customer_owner, load_master_key

pytestmark = pytest.mark.integration


@pytest.fixture
def intake(stack):
    keyring = Keyring(
        stack.postgres.keyring_url("intake"), load_master_key(stack.keyring_master_key())
    )
    store = IntakeApplication(
        stack.database_url("intake"), pool_size=2, create_tables=False, keyring=keyring
    )
    yield store
    store.close()


def call(intake: IntakeApplication, phone: str, words: str):
    message = InboundMessage(
        channel=Channel.SMS,
        provider="test",
        provider_message_id=str(uuid4()),
        sender=Contact.normalised("phone", phone),
        sender_name="Ann",
        subject=None,
        body=words,
    )
    return intake.receive(
        message,
        policy=load_policy(None),
        fingerprint=message_fingerprint(message, []),
        now=datetime.now(UTC),
    )


def test_a_message_meeting_a_half_done_erasure_records_it_and_starts_a_new_customer(intake):
    phone = f"+1415556{uuid4().int % 10_000:04d}"
    first = call(intake, phone, "My payment failed")
    customer_id = intake.case(first.case_id).customer_id
    # The erasure destroyed the key, then its process died before recording anything.
    assert intake.keyring is not None
    intake.keyring.destroy([customer_owner(customer_id)], by="dpo", reason="GDPR art. 17")

    later = call(intake, phone, "Any news?")

    erased = intake.customer(customer_id)
    assert erased is not None and erased.erased_at is not None and erased.contacts == []
    assert later.opened and later.case_id != first.case_id
    assert intake.case(later.case_id).customer_id not in (None, customer_id)
    assert intake.case(first.case_id).subject == "[erased]"
