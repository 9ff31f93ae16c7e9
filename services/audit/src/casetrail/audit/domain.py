"""The per-case hash chain and the causal order audit records events in. Pure.

Each record's hash is SHA-256 over the previous record's hash and the event's canonical
bytes, so changing, removing or reordering any record breaks every hash after it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from casetrail.audit.policy import AuditPolicy
from casetrail.contracts.case import CaseState
from casetrail.contracts.envelope import Envelope
from casetrail.contracts.events import (
    EVENT_TYPES,
    CaseOpened,
    CaseStatusChanged,
    CustomerEventData,
    read_data,
    upcast,
)
from casetrail.evidence import merkle
from casetrail.evidence.chain import GENESIS_HASH, chain_hash
from casetrail.evidence.tree_head import EvidenceError, TreeHead, verify_tree_head


def opens_a_case(envelope: Envelope) -> bool:
    """True for a CaseOpened of any version (older ones are upcast to the current type)."""
    return upcast(envelope.type, envelope.data)[0] == CaseOpened.TYPE


def is_a_customer_event(envelope: Envelope) -> bool:
    model = EVENT_TYPES.get(upcast(envelope.type, envelope.data)[0], object)
    return issubclass(model, CustomerEventData)


def needs_an_open_case(envelope: Envelope) -> bool:
    """Case events wait for their case's opening; a customer's record has no opening."""
    return not opens_a_case(envelope) and not is_a_customer_event(envelope)


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


@dataclass(frozen=True)
class LoggedRecord:
    case_seq: int
    event_id: UUID
    envelope_json: str
    leaf_hash: bytes | None


def first_unlogged(records: Iterable[LoggedRecord]) -> ChainBreak | None:
    """The first record whose leaf in the global log is missing or hashes other bytes."""
    for record in records:
        if record.leaf_hash is None:
            return ChainBreak(record.case_seq, record.event_id, "not in the global log")
        if bytes(record.leaf_hash) != merkle.leaf_hash(record.envelope_json.encode()):
            return ChainBreak(
                record.case_seq, record.event_id, "its leaf in the global log hashes other bytes"
            )
    return None


def case_events(envelopes: Iterable[Envelope]) -> list[Envelope]:
    """The events that change a case: a customer's record is kept, but not folded."""
    return [e for e in envelopes if not is_a_customer_event(e)]


def as_it_stood(history: Sequence[Envelope], instant: datetime) -> list[Envelope]:
    """The events that had happened by `instant`, in the order the case's chain holds them."""
    return [e for e in case_events(history) if e.time <= instant]


@dataclass(frozen=True)
class Change:
    path: str
    before: Any
    after: Any


def _flatten(value: Any, path: str, into: dict[str, Any]) -> dict[str, Any]:
    if isinstance(value, dict) and value:
        for key in sorted(value):
            _flatten(value[key], f"{path}.{key}" if path else str(key), into)
    else:
        into[path] = value
    return into


def changes_between(before: CaseState | None, after: CaseState | None) -> list[Change]:
    """Every field that differs, by its dotted path (clocks and refunds by their ids)."""
    old = _flatten(before.to_json_dict() if before else {}, "", {})
    new = _flatten(after.to_json_dict() if after else {}, "", {})
    return [
        Change(path, old.get(path), new.get(path))
        for path in sorted(old.keys() | new.keys())
        if old.get(path) != new.get(path)
    ]


@dataclass(frozen=True)
class Retention:
    closed_at: datetime | None
    retain_until: datetime | None
    years_after_closure: int
    policy_version: str

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
            "retain_until": self.retain_until.isoformat() if self.retain_until else None,
            "years_after_closure": self.years_after_closure,
            "policy_version": self.policy_version,
        }


def retention_of(history: Sequence[Envelope], policy: AuditPolicy) -> Retention:
    """How long the case's records must be kept: while open, and then the policy's years."""
    rule = policy.retention
    closed_at = None
    for envelope in case_events(history):
        data = read_data(envelope)
        if isinstance(data, CaseStatusChanged):
            closed_at = data.changed_at if data.to_status in rule.closing_statuses else None
    return Retention(
        closed_at=closed_at,
        retain_until=_years_later(closed_at, rule.years_after_closure) if closed_at else None,
        years_after_closure=rule.years_after_closure,
        policy_version=policy.version,
    )


def _years_later(instant: datetime, years: int) -> datetime:
    try:
        return instant.replace(year=instant.year + years)
    except ValueError:  # 29 February, in a year that has none
        return instant.replace(year=instant.year + years, day=28)


@dataclass(frozen=True)
class LogBreak:
    leaf_index: int | None
    event_id: UUID | None
    tree_size: int | None
    reason: str


@dataclass(frozen=True)
class LogEntry:
    leaf_index: int
    event_id: UUID
    leaf_hash: bytes
    envelope_json: str | None  # None: the leaf's record is gone


def rehashed_leaf(expected_index: int, entry: LogEntry) -> bytes | LogBreak:
    """The leaf as the record itself hashes, or why the log disagrees with its records."""
    if entry.leaf_index != expected_index:
        return LogBreak(expected_index, None, None, "the leaf is missing from the log")
    if entry.envelope_json is None:
        return LogBreak(entry.leaf_index, entry.event_id, None, "its record is missing")
    recomputed = merkle.leaf_hash(entry.envelope_json.encode())
    if recomputed != entry.leaf_hash:
        return LogBreak(entry.leaf_index, entry.event_id, None, "its record hashes to another leaf")
    return recomputed


def first_bad_tree_head(
    log: merkle.MerkleLog, heads: Iterable[TreeHead], public_key: Ed25519PublicKey
) -> LogBreak | None:
    """The first signed head whose signature fails or whose root the records do not give."""
    for head in heads:
        try:
            verify_tree_head(head, public_key)
        except EvidenceError as error:
            return LogBreak(None, None, head.tree_size, str(error))
        if head.tree_size > len(log):
            return LogBreak(None, None, head.tree_size, f"the log has only {len(log)} leaves")
        if log.root(head.tree_size) != head.root_hash:
            return LogBreak(None, None, head.tree_size, "the records do not give its root")
    return None
