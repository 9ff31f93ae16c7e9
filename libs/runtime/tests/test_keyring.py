"""The keyring against a real PostgreSQL: keys minted once per owner, destruction final
and enforced by the database itself."""

from __future__ import annotations

import base64
import os
from uuid import uuid4

import psycopg
import pytest

from casetrail.contracts import personal
from casetrail.contracts.envelope import Envelope
from casetrail.runtime.keyring import (
    KeyDestroyed,
    Keyring,
    case_owner,
    customer_owner,
    load_master_key,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def keyring(stack):
    """The stack's own keyring database, used as intake uses it (mint and destroy)."""
    master = load_master_key(stack.keyring_master_key())
    ring = Keyring(stack.postgres.keyring_url("intake"), master)
    yield ring
    ring.close()


def test_a_customer_has_one_key_for_all_their_cases(keyring):
    customer, case, later_case = uuid4(), uuid4(), uuid4()
    key = keyring.sealing_key(case, customer)
    assert keyring.sealing_key(later_case, customer) == key
    assert keyring.sealing_key(None, customer) == key
    assert keyring.keys([key.key_id, "no-such-key"]) == {key.key_id: key}


def test_a_case_without_a_known_customer_gets_a_key_of_its_own(keyring):
    case = uuid4()
    key = keyring.sealing_key(case, None)
    assert keyring.sealing_key(case, None) == key
    assert key != keyring.sealing_key(uuid4(), None)
    assert key != keyring.sealing_key(case, uuid4())  # once its customer is known, theirs


def test_keys_are_stored_wrapped_under_the_master_key(keyring, stack):
    customer = uuid4()
    key = keyring.sealing_key(None, customer)
    with psycopg.connect(stack.postgres.admin_url("casetrail_keyring")) as conn:
        (wrapped,) = conn.execute(
            "SELECT wrapped FROM keyring_keys WHERE key_id = %s", (key.key_id,)
        ).fetchone()
    assert key.secret not in bytes(wrapped)
    stranger = Keyring(keyring.database_url, os.urandom(32))
    with pytest.raises(personal.SealError):
        stranger.keys([key.key_id])
    stranger.close()


def test_destroying_a_key_erases_every_value_sealed_under_it(keyring):
    customer, case = uuid4(), uuid4()
    key = keyring.sealing_key(case, customer)
    data = {"case_id": str(case), "subject": "Ann Smith, 07700 900123", "channel": "sms"}
    sealed = personal.seal_personal("casetrail.case.opened.v1", data, key)
    envelope = Envelope(
        id=uuid4(),
        source="/test",
        type="casetrail.case.opened.v1",
        time="2026-12-01T10:00:00Z",
        subject=case,
        correlationid=case,
        sequence=1,
        data=sealed,
    )
    assert keyring.reveal([envelope])[0].data == data

    case_key = keyring.sealing_key(case, None)  # a message on their case that named no one
    owners = [customer_owner(customer), case_owner(case)]
    erasure = keyring.destroy(owners, by="dpo", reason="GDPR art. 17")
    assert set(erasure.key_ids) == {key.key_id, case_key.key_id}
    assert erasure.destroyed_by == "dpo" and erasure.reason == "GDPR art. 17"
    assert keyring.keys([key.key_id, case_key.key_id]) == {}
    shown = keyring.reveal([envelope])[0]
    assert shown.data["subject"] == personal.ERASED and shown.data["channel"] == "sms"
    assert envelope.data == sealed  # the recorded event is untouched
    # Destroying again changes nothing; no new data can be sealed under a destroyed key.
    assert keyring.destroy(owners, by="someone", reason="again") == erasure
    with pytest.raises(KeyDestroyed):
        keyring.sealing_key(uuid4(), customer)
    with pytest.raises(KeyDestroyed):
        keyring.sealing_key(case, None)


def test_no_one_brings_a_destroyed_key_back_or_deletes_one(keyring, stack):
    customer = uuid4()
    key = keyring.sealing_key(None, customer)
    keyring.destroy([customer_owner(customer)], by="dpo", reason="erasure")
    restored = base64.b64encode(os.urandom(60))
    with psycopg.connect(stack.postgres.admin_url("casetrail_keyring"), autocommit=True) as conn:
        for statement, params in [
            ("UPDATE keyring_keys SET wrapped = %s WHERE key_id = %s", (restored, key.key_id)),
            ("DELETE FROM keyring_keys WHERE key_id = %s", (key.key_id,)),
            ("TRUNCATE keyring_keys", ()),
        ]:
            with pytest.raises(psycopg.errors.RaiseException):
                conn.execute(statement, params)
        (destroyed_by,) = conn.execute(
            "SELECT destroyed_by FROM keyring_keys WHERE key_id = %s", (key.key_id,)
        ).fetchone()
    assert destroyed_by == "dpo"


def test_audit_may_open_keys_but_neither_mint_nor_destroy_them(stack, keyring):
    reader = Keyring(stack.postgres.keyring_url("audit"), keyring.master_key)
    key = keyring.sealing_key(None, uuid4())
    assert reader.keys([key.key_id]) == {key.key_id: key}
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.sealing_key(None, uuid4())
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        reader.destroy([customer_owner(uuid4())], by="audit", reason="not audit's call")
    reader.close()
