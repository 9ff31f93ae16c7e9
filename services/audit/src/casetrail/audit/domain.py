"""The per-case hash chain and the causal order audit records events in. Pure.

Each record's hash is SHA-256 over the previous record's hash and the event's canonical
bytes, so changing, removing or reordering any record breaks every hash after it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from uuid import UUID

from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import EVENT_TYPES, CaseOpened, CustomerEventData, upcast
from casetrail.evidence.chain import GENESIS_HASH, chain_hash

def opens_a_case(envelope: Envelope) -> bool:
    """True for a CaseOpened of any version (older ones are upcast to the current type)."""
    return upcast(envelope.type, envelope.data)[0] == CaseOpened.TYPE


def needs_an_open_case(envelope: Envelope) -> bool:
    """Case events wait for their case's opening; a customer's record has no opening."""
    model = EVENT_TYPES.get(upcast(envelope.type, envelope.data)[0])
    return not opens_a_case(envelope) and not (
        model is not None and issubclass(model, CustomerEventData)
    )


def waiting_for(envelope: Envelope, recorded: set[UUID], case_opened: bool) -> str | None:
    """What must be recorded before this event may be: its cause, then its case's opening.

    None when it may be recorded now.
    """
    if envelope.causationid is not None and envelope.causationid not in recorded:
        return f"event:{envelope.causationid}"
    if needs_an_open_case(envelope) and not case_opened:
        return f"case:{envelope.subject}"
    return None


@dataclass(frozen=True)
class StoredRecord:
    case_seq: int
    event_id: UUID
    envelope_json: str
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    case_seq: int
    event_id: UUID | None
    reason: str


def verify_chain(records: Iterable[StoredRecord], expected_length: int | None) -> ChainBreak | None:
    """The first record at which the chain fails, or None when it holds."""
    previous = GENESIS_HASH
    seq = 0
    for seq, record in enumerate(records, start=1):
        if record.case_seq != seq:
            return ChainBreak(
                seq, record.event_id, f"record {seq} is missing (found {record.case_seq})"
            )
        if record.prev_hash != previous:
            return ChainBreak(
                seq, record.event_id, "previous-hash link does not match the record before"
            )
        try:
            envelope = Envelope.model_validate_json(record.envelope_json)
        except ValueError:
            return ChainBreak(seq, record.event_id, "stored event is not a valid envelope")
        if envelope.id != record.event_id:
            return ChainBreak(seq, record.event_id, "event id column differs from the stored event")
        if envelope.to_bytes() != record.envelope_json.encode():
            return ChainBreak(seq, record.event_id, "stored event is not in canonical form")
        if chain_hash(previous, record.envelope_json.encode()) != record.hash:
            return ChainBreak(seq, record.event_id, "hash does not match the stored event")
        previous = record.hash
    if expected_length is not None and seq != expected_length:
        return ChainBreak(
            seq + 1, None, f"chain has {seq} records, the case head says {expected_length}"
        )
    return None
