"""Evidence bundles verify offline, and every kind of tampering is named."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from casetrail.contracts import events as ev
from casetrail.contracts.envelope import Envelope
from casetrail.evidence import bundle as evidence
from casetrail.evidence import merkle
from casetrail.evidence.chain import GENESIS_HASH, chain_hash
from casetrail.evidence.tree_head import (
    EvidenceError,
    TreeHead,
    sign_tree_head,
    verify_tree_head,
)

KEY = Ed25519PrivateKey.generate()
EXPORTED_AT = datetime(2026, 11, 23, 12, tzinfo=UTC)


def case_events(case_id: UUID, changes: int = 3) -> list[Envelope]:
    opened_at = datetime(2026, 11, 23, 9, tzinfo=UTC)
    opened = ev.CaseOpened(
        case_id=case_id,
        channel=ev.Channel.EMAIL,
        customer_ref="acct-1",
        subject="Charged twice",
        description="I was charged twice for my plan.",
        opened_at=opened_at,
    )
    payloads: list[ev.EventData] = [opened]
    statuses = ["Opened", "Pending On", "Awaiting Customer", "Pending On", "Resolved"]
    for step in range(changes):
        payloads.append(
            ev.CaseStatusChanged(
                case_id=case_id,
                from_status=statuses[step],
                to_status=statuses[step + 1],
                changed_by="agent-7",
                changed_at=opened_at + timedelta(minutes=step + 1),
            )
        )
    return [
        Envelope(
            id=uuid4(),
            source="/test",
            type=payload.TYPE,
            time=opened_at + timedelta(minutes=sequence),
            subject=case_id,
            correlationid=case_id,
            sequence=sequence + 1,
            data=payload.model_dump(mode="json"),
        )
        for sequence, payload in enumerate(payloads)
    ]


def log_with(envelopes: list[Envelope], others_before: int = 5) -> tuple[merkle.MerkleLog, int]:
    log = merkle.MerkleLog([merkle.leaf_hash(b"other %d" % n) for n in range(others_before)])
    for envelope in envelopes:
        log.append(merkle.leaf_hash(envelope.to_bytes()))
    log.append(merkle.leaf_hash(b"recorded later"))
    return log, others_before


def records_of(envelopes: list[Envelope], log: merkle.MerkleLog, first_leaf: int):
    previous = GENESIS_HASH
    records = []
    for seq, envelope in enumerate(envelopes, start=1):
        raw = envelope.to_bytes()
        digest = chain_hash(previous, raw)
        leaf = first_leaf + seq - 1
        records.append(
            evidence.BundleRecord(seq, raw, previous, digest, leaf, log.inclusion_proof(leaf))
        )
        previous = digest
    return records


def make_bundle(case_id: UUID | None = None, tamper=None, key: Ed25519PrivateKey = KEY) -> bytes:
    case_id = case_id or uuid4()
    envelopes = case_events(case_id)
    log, first_leaf = log_with(envelopes)
    records = records_of(envelopes, log, first_leaf)
    head = sign_tree_head(key, len(log), log.root(), EXPORTED_AT)
    if tamper:
        records, head = tamper(records, head)
    return evidence.build_bundle(
        case_id, records, head, "<html>timeline</html>", key, EXPORTED_AT, {"years": 3}
    )


def failures(report: evidence.Report) -> dict[str, str]:
    return {check.name: check.detail for check in report.checks if not check.ok}


def test_an_untouched_bundle_verifies_every_check():
    report = evidence.verify_bundle(make_bundle(), KEY.public_key())
    assert report.ok, failures(report)
    assert [c.name for c in report.checks] == [
        "manifest",
        "files",
        "tree head",
        "hash chain",
        "inclusion",
        "state",
    ]


def test_the_same_inputs_give_the_same_bytes():
    case_id = uuid4()
    envelopes = case_events(case_id)
    log, first = log_with(envelopes)
    head = sign_tree_head(KEY, len(log), log.root(), EXPORTED_AT)
    records = records_of(envelopes, log, first)

    def build() -> bytes:
        return evidence.build_bundle(case_id, records, head, "t", KEY, EXPORTED_AT)

    assert build() == build()


def test_another_key_is_refused_at_the_manifest():
    report = evidence.verify_bundle(make_bundle(), Ed25519PrivateKey.generate().public_key())
    assert not report.ok
    assert "signature" in failures(report)["manifest"]


def rewrite(content: bytes, name: str, change) -> bytes:
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        files = {n: archive.read(n) for n in archive.namelist()}
    files[name] = change(files[name])
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for n, data in files.items():
            archive.writestr(n, data)
    return out.getvalue()


def test_an_edited_event_is_named_as_an_altered_file():
    edited = rewrite(
        make_bundle(), evidence.EVENTS, lambda b: b.replace(b"Charged twice", b"Charged once")
    )
    report = evidence.verify_bundle(edited, KEY.public_key())
    assert "events.jsonl" in failures(report)["files"]


def test_a_garbled_archive_is_refused_not_crashed():
    report = evidence.verify_bundle(b"PK\x03\x04 not really", KEY.public_key())
    assert failures(report).keys() == {"bundle"}


def test_a_broken_link_names_the_first_bad_event():
    def swap(records, head):
        records[1], records[2] = records[2], records[1]
        return records, head

    detail = failures(evidence.verify_bundle(make_bundle(tamper=swap), KEY.public_key()))
    assert detail["hash chain"].startswith("event 2 (")


def test_a_wrong_proof_names_the_event_it_fails_for():
    def forge(records, head):
        third = records[2]
        forged = [merkle.leaf_hash(b"forged"), *third.inclusion_proof[1:]]
        records[2] = evidence.BundleRecord(
            third.case_seq, third.envelope, third.prev_hash, third.hash, third.leaf_index, forged
        )
        return records, head

    detail = failures(evidence.verify_bundle(make_bundle(tamper=forge), KEY.public_key()))
    assert set(detail) == {"inclusion"}
    assert detail["inclusion"].startswith("event 3 (")


def test_a_tree_head_signed_by_another_key_is_refused():
    other = Ed25519PrivateKey.generate()

    def resign(records, head):
        return records, sign_tree_head(other, head.tree_size, head.root_hash, head.timestamp)

    detail = failures(evidence.verify_bundle(make_bundle(tamper=resign), KEY.public_key()))
    assert "tree head" in detail


def test_a_tree_head_round_trips_and_any_changed_field_fails():
    head = sign_tree_head(KEY, 42, merkle.leaf_hash(b"x"), EXPORTED_AT)
    again = TreeHead.from_json_dict(json.loads(json.dumps(head.to_json_dict())))
    verify_tree_head(again, KEY.public_key())
    for changed in (
        TreeHead(43, head.root_hash, head.timestamp, head.key_id, head.signature),
        TreeHead(42, merkle.leaf_hash(b"y"), head.timestamp, head.key_id, head.signature),
        TreeHead(
            42, head.root_hash, head.timestamp + timedelta(seconds=1), head.key_id, head.signature
        ),
    ):
        with pytest.raises(EvidenceError):
            verify_tree_head(changed, KEY.public_key())
    with pytest.raises(EvidenceError):
        TreeHead.from_json_dict({"tree_size": 1})


def test_the_command_line_says_verified_or_names_the_failure(tmp_path):
    from typer.testing import CliRunner

    from casetrail.evidence.tree_head import public_key_pem
    from casetrail.runtime.cli import app

    key_file = tmp_path / "audit.pub"
    key_file.write_bytes(public_key_pem(KEY.public_key()))
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    good.write_bytes(make_bundle())
    bad.write_bytes(rewrite(make_bundle(), evidence.STATE, lambda b: b.replace(b"a", b"b", 1)))
    runner = CliRunner()

    verified = runner.invoke(app, ["verify", str(good), "--key", str(key_file)])
    assert verified.exit_code == 0, verified.output
    assert verified.output.strip().endswith("VERIFIED")

    refused = runner.invoke(app, ["verify", str(bad), "--key", str(key_file)])
    assert refused.exit_code == 1
    assert "FAIL  files: missing, unlisted or altered: state.json" in refused.output

    unreadable = runner.invoke(app, ["verify", str(good), "--key", str(good)])
    assert unreadable.exit_code == 2


def test_a_signed_but_malformed_bundle_is_refused_not_crashed():
    manifest = json.dumps(
        {"format": evidence.BUNDLE_FORMAT, "case_id": "x", "files": {}, "records": "many"}
    ).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr(evidence.MANIFEST, manifest)
        archive.writestr(evidence.MANIFEST_SIGNATURE, KEY.sign(manifest))
    report = evidence.verify_bundle(out.getvalue(), KEY.public_key())
    assert not report.ok
    assert "malformed content" in failures(report)["bundle"]
