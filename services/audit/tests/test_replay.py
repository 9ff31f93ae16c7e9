"""Time travel, diffs and retention: pure folds over a case's recorded events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from casetrail.audit.domain import (
    LoggedRecord,
    as_it_stood,
    changes_between,
    first_unlogged,
    retention_of,
)
from casetrail.audit.policy import load_policy
from casetrail.contracts import events as ev
from casetrail.contracts.case import fold, state_hash
from casetrail.contracts.envelope import Envelope
from casetrail.evidence import merkle

T0 = datetime(2024, 2, 29, 9, tzinfo=UTC)


def envelope(payload: ev.Payload, at: datetime, subject=None) -> Envelope:
    return Envelope(
        id=uuid4(),
        source="/test",
        type=payload.TYPE,
        time=at,
        subject=subject or payload.case_id,
        correlationid=uuid4(),
        sequence=1,
        data=payload.model_dump(mode="json"),
    )


def history(final_status: str = "Closed") -> list[Envelope]:
    case_id = uuid4()
    opened = ev.CaseOpened(
        case_id=case_id,
        channel=ev.Channel.CHAT,
        customer_ref="acct-9",
        subject="Card declined",
        description="My card was declined abroad.",
        opened_at=T0,
    )
    steps = [("Opened", "Pending On"), ("Pending On", "Resolved"), ("Resolved", final_status)]
    return [envelope(opened, T0)] + [
        envelope(
            ev.CaseStatusChanged(
                case_id=case_id,
                from_status=before,
                to_status=after,
                changed_by="agent-3",
                changed_at=T0 + timedelta(hours=hour),
            ),
            T0 + timedelta(hours=hour),
        )
        for hour, (before, after) in enumerate(steps, start=1)
    ]


def test_the_case_as_it_stood_folds_only_what_had_happened():
    events = history()
    assert as_it_stood(events, T0 - timedelta(seconds=1)) == []
    assert fold(as_it_stood(events, T0)).status == "Opened"
    assert fold(as_it_stood(events, T0 + timedelta(hours=2, minutes=30))).status == "Resolved"
    assert fold(as_it_stood(events, T0 + timedelta(days=1))).status == "Closed"


def test_replaying_twice_gives_the_same_state_hash_and_a_later_instant_another():
    events = history()
    noon = T0 + timedelta(hours=1, minutes=5)
    assert state_hash(fold(as_it_stood(events, noon))) == state_hash(
        fold(as_it_stood(list(events), noon))
    )
    assert state_hash(fold(as_it_stood(events, noon))) != state_hash(fold(events))


def test_a_diff_names_each_changed_field_with_both_values():
    events = history()
    before = fold(as_it_stood(events, T0))
    after = fold(as_it_stood(events, T0 + timedelta(hours=2)))
    changes = {c.path: (c.before, c.after) for c in changes_between(before, after)}
    assert changes["status"] == ("Opened", "Resolved")
    assert changes["version"] == (1, 3)
    assert "channel" not in changes
    assert changes_between(after, after) == []
    assert {c.path for c in changes_between(None, before)} >= {"status", "case_id"}


def test_customer_records_are_kept_but_not_folded_into_the_case():
    events = history()
    customer_id = uuid4()
    contact = ev.CustomerContactUpdated(
        customer_id=customer_id,
        contacts=(ev.RecordedContactPoint(kind="email", value="a@example.com"),),
        updated_by="intake",
        updated_at=T0,
    )
    mixed = [*events[:2], envelope(contact, T0, subject=customer_id), *events[2:]]
    assert as_it_stood(mixed, T0 + timedelta(days=1)) == events


def test_retention_counts_the_policy_years_from_closure():
    policy = load_policy()
    kept = retention_of(history("Closed"), policy)
    assert kept.closed_at == T0 + timedelta(hours=3)
    # From a 29 February to a year without one.
    assert kept.retain_until == datetime(2027, 2, 28, 12, tzinfo=UTC)
    open_case = retention_of(history()[:3], policy)
    assert open_case.closed_at is None and open_case.retain_until is None


def test_a_record_whose_leaf_hashes_other_bytes_is_named():
    events = history()
    logged = [
        LoggedRecord(seq, e.id, e.to_bytes().decode(), merkle.leaf_hash(e.to_bytes()))
        for seq, e in enumerate(events, start=1)
    ]
    assert first_unlogged(logged) is None
    logged[2] = LoggedRecord(3, events[2].id, logged[2].envelope_json, merkle.leaf_hash(b"x"))
    broken = first_unlogged(logged)
    assert broken.case_seq == 3 and "other bytes" in broken.reason
    logged[1] = LoggedRecord(2, events[1].id, logged[1].envelope_json, None)
    assert first_unlogged(logged).case_seq == 2


def test_the_log_rehashed_from_its_records_names_the_first_leaf_that_disagrees():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from casetrail.audit.domain import LogBreak, LogEntry, first_bad_tree_head, rehashed_leaf
    from casetrail.evidence.tree_head import sign_tree_head

    events = history()
    entries = [
        LogEntry(n, e.id, merkle.leaf_hash(e.to_bytes()), e.to_bytes().decode())
        for n, e in enumerate(events)
    ]
    log = merkle.MerkleLog([rehashed_leaf(n, entry) for n, entry in enumerate(entries)])
    key = Ed25519PrivateKey.generate()
    heads = [sign_tree_head(key, size, log.root(size), T0) for size in (2, 4)]
    assert first_bad_tree_head(log, heads, key.public_key()) is None

    changed = LogEntry(2, events[2].id, entries[2].leaf_hash, entries[1].envelope_json)
    assert rehashed_leaf(2, changed) == LogBreak(
        2, events[2].id, None, "its record hashes to another leaf"
    )
    gone = LogEntry(2, events[2].id, entries[2].leaf_hash, None)
    assert rehashed_leaf(2, gone).reason == "its record is missing"
    assert rehashed_leaf(3, entries[2]).reason == "the leaf is missing from the log"

    forged = [heads[0], sign_tree_head(key, 4, log.root(3), T0)]
    assert first_bad_tree_head(log, forged, key.public_key()).tree_size == 4
    other_key = Ed25519PrivateKey.generate().public_key()
    assert "signed by key" in first_bad_tree_head(log, heads, other_key).reason
