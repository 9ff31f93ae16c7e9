from dataclasses import replace
from datetime import UTC, datetime
from uuid import uuid4

from casetrail.audit.domain import GENESIS_HASH, StoredRecord, chain_hash, verify_chain, waiting_for
from casetrail.contracts.envelope import Envelope


def envelope(case_id, event_type="casetrail.case.opened.v1", causation=None):
    return Envelope(
        id=uuid4(),
        source="/test",
        type=event_type,
        time=datetime(2026, 11, 23, tzinfo=UTC),
        subject=case_id,
        correlationid=case_id,
        causationid=causation,
        sequence=1,
        data={"case_id": str(case_id)},
    )


def chain(n=3):
    case_id = uuid4()
    records, previous = [], GENESIS_HASH
    for seq in range(1, n + 1):
        e = envelope(case_id)
        canonical = e.to_bytes().decode()
        digest = chain_hash(previous, canonical.encode())
        records.append(StoredRecord(seq, e.id, canonical, previous, digest))
        previous = digest
    return records


def test_an_intact_chain_verifies():
    assert verify_chain(chain(), 3) is None


def test_a_changed_event_is_named_by_its_sequence():
    records = chain()
    tampered = records[1].envelope_json.replace('"source":"/test"', '"source":"/evil"')
    records[1] = replace(records[1], envelope_json=tampered)
    broken = verify_chain(records, 3)
    assert broken.case_seq == 2 and "hash" in broken.reason


def test_a_removed_record_is_found():
    records = chain()
    del records[1]
    assert verify_chain(records, 3).case_seq == 2


def test_a_removed_last_record_is_found_through_the_case_head():
    records = chain()[:2]
    broken = verify_chain(records, 3)
    assert broken.case_seq == 3 and broken.event_id is None


def test_an_event_waits_for_its_cause_then_for_its_case_to_open():
    case_id, cause = uuid4(), uuid4()
    triaged = envelope(case_id, "casetrail.case.triaged.v1", causation=cause)
    assert waiting_for(triaged, set(), case_opened=False) == f"event:{cause}"
    assert waiting_for(triaged, {cause}, case_opened=False) == f"case:{case_id}"
    assert waiting_for(triaged, {cause}, case_opened=True) is None
    assert waiting_for(envelope(case_id), set(), case_opened=False) is None
