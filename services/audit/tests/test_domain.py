from dataclasses import replace
from uuid import uuid4

from casetrail.audit.domain import GENESIS_HASH, StoredRecord, chain_hash, verify_chain, waiting_for


def chain(new_event, n=3):
    case_id = uuid4()
    records, previous = [], GENESIS_HASH
    for seq in range(1, n + 1):
        e = new_event(case_id)
        canonical = e.to_bytes().decode()
        digest = chain_hash(previous, canonical.encode())
        records.append(StoredRecord(seq, e.id, canonical, previous, digest))
        previous = digest
    return records


def test_an_intact_chain_verifies(new_event):
    assert verify_chain(chain(new_event), 3) is None


def test_a_changed_event_is_named_by_its_sequence(new_event):
    records = chain(new_event)
    tampered = records[1].envelope_json.replace('"source":"/test"', '"source":"/evil"')
    records[1] = replace(records[1], envelope_json=tampered)
    broken = verify_chain(records, 3)
    assert broken.case_seq == 2 and "hash" in broken.reason


def test_a_removed_record_is_found(new_event):
    records = chain(new_event)
    del records[1]
    assert verify_chain(records, 3).case_seq == 2


def test_a_removed_last_record_is_found_through_the_case_head(new_event):
    records = chain(new_event)[:2]
    broken = verify_chain(records, 3)
    assert broken.case_seq == 3 and broken.event_id is None


def test_an_event_waits_for_its_cause_then_for_its_case_to_open(new_event):
    case_id = uuid4()
    opened = new_event(case_id)
    triaged = new_event(case_id, "casetrail.case.triaged.v1", cause=opened)
    cause = opened.id
    assert waiting_for(triaged, set(), case_opened=False) == f"event:{cause}"
    assert waiting_for(triaged, {cause}, case_opened=False) == f"case:{case_id}"
    assert waiting_for(triaged, {cause}, case_opened=True) is None
    assert waiting_for(opened, set(), case_opened=False) is None
