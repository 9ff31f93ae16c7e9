"""The evidence bundle a regulator receives for one case, and its offline verification.

A bundle is a zip archive:
- `events.jsonl`: the case's events, one canonical CloudEvents envelope per line, in the
  order audit recorded them (the case's hash chain);
- `proofs.json`: for each event its chain links, its leaf in the audit log and the
  inclusion proof of that leaf in the signed tree head;
- `tree_head.json`: the signed tree head the proofs lead to;
- `state.json`: the case as the shared fold leaves it, with its state hash;
- `timeline.html`: who did what and when, for people;
- `manifest.json` (SHA-256 of every file above) and `manifest.sig` (its Ed25519 signature).

Verifying needs only the bundle and the audit log's public key: no Kafka, no PostgreSQL.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from casetrail.contracts import case
from casetrail.contracts.envelope import Envelope, canonical_json, fingerprint
from casetrail.contracts.events import ContractError
from casetrail.evidence import merkle
from casetrail.evidence.chain import GENESIS_HASH, chain_hash
from casetrail.evidence.tree_head import (
    EvidenceError,
    TreeHead,
    verify_signature,
    verify_tree_head,
)

BUNDLE_FORMAT = "casetrail-evidence-bundle/1"
EVENTS = "events.jsonl"
PROOFS = "proofs.json"
TREE_HEAD = "tree_head.json"
STATE = "state.json"
TIMELINE = "timeline.html"
MANIFEST = "manifest.json"
MANIFEST_SIGNATURE = "manifest.sig"


@dataclass(frozen=True)
class BundleRecord:
    """One recorded event with everything needed to prove it."""

    case_seq: int
    envelope: bytes
    prev_hash: str
    hash: str
    leaf_index: int
    inclusion_proof: Sequence[bytes]


def case_state_of(envelopes: Sequence[Envelope]) -> case.CaseState | None:
    """The fold of a case's events; a customer's record has no case state."""
    try:
        return case.fold(envelopes)
    except ContractError:
        return None


def build_bundle(
    case_id: UUID,
    records: Sequence[BundleRecord],
    tree_head: TreeHead,
    timeline_html: str,
    signing_key: Ed25519PrivateKey,
    exported_at: datetime,
    retention: dict[str, Any] | None = None,
) -> bytes:
    state = case_state_of([Envelope.from_bytes(r.envelope) for r in records])
    files = {
        EVENTS: b"".join(r.envelope + b"\n" for r in records),
        PROOFS: _pretty(
            [
                {
                    "case_seq": r.case_seq,
                    "prev_hash": r.prev_hash,
                    "hash": r.hash,
                    "leaf_index": r.leaf_index,
                    "inclusion_proof": [node.hex() for node in r.inclusion_proof],
                }
                for r in records
            ]
        ),
        TREE_HEAD: _pretty(tree_head.to_json_dict()),
        STATE: _pretty(
            {
                "state": state.to_json_dict() if state else None,
                "state_hash": case.state_hash(state),
            }
        ),
        TIMELINE: timeline_html.encode(),
    }
    manifest = canonical_json(
        {
            "format": BUNDLE_FORMAT,
            "case_id": str(case_id),
            "exported_at": exported_at.astimezone(UTC).isoformat(),
            "records": len(records),
            "tree_size": tree_head.tree_size,
            "retention": retention,
            "files": {name: hashlib.sha256(content).hexdigest() for name, content in files.items()},
        }
    )
    files[MANIFEST] = manifest
    files[MANIFEST_SIGNATURE] = signing_key.sign(manifest)
    archive = io.BytesIO()
    stamp = exported_at.astimezone(UTC).timetuple()[:6]
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as bundle:
        for name, content in files.items():
            bundle.writestr(zipfile.ZipInfo(name, date_time=stamp), content)
    return archive.getvalue()


def _pretty(value: Any) -> bytes:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).encode()


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


@dataclass
class Report:
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(check.ok for check in self.checks)

    def passed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, True, detail))

    def failed(self, name: str, detail: str) -> None:
        self.checks.append(Check(name, False, detail))


class _Unverifiable(Exception):
    """Stops verification: nothing after this check can be trusted."""


def verify_bundle(bundle: bytes, public_key: Ed25519PublicKey) -> Report:
    """Checks every signature, file hash, chain link and proof; says exactly what fails."""
    report = Report()
    try:
        files = _read_archive(bundle, report)
        manifest = _verified_manifest(files, public_key, report)
        _verify_files(files, manifest, report)
        head = _verified_tree_head(files, manifest, public_key, report)
        envelopes = _verify_events(files, manifest, head, report)
        _verify_state(files, envelopes, report)
    except _Unverifiable:
        pass
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as error:
        # Signed, so written by the key's holder, and still not a bundle this verifier
        # understands: say so rather than crash.
        report.failed("bundle", f"malformed content: {error!r}")
    return report


def _read_archive(bundle: bytes, report: Report) -> dict[str, bytes]:
    try:
        with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
            return {name: archive.read(name) for name in archive.namelist()}
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        report.failed("bundle", f"not a readable zip archive: {error}")
        raise _Unverifiable from error


def _verified_manifest(
    files: dict[str, bytes], public_key: Ed25519PublicKey, report: Report
) -> dict[str, Any]:
    if MANIFEST not in files or MANIFEST_SIGNATURE not in files:
        report.failed("manifest", f"{MANIFEST} or {MANIFEST_SIGNATURE} is missing")
        raise _Unverifiable
    try:
        verify_signature(public_key, files[MANIFEST_SIGNATURE], files[MANIFEST])
        manifest = json.loads(files[MANIFEST])
        if manifest.get("format") != BUNDLE_FORMAT:
            raise EvidenceError(f"format is {manifest.get('format')!r}, not {BUNDLE_FORMAT}")
    except (EvidenceError, ValueError) as error:
        report.failed("manifest", str(error))
        raise _Unverifiable from error
    report.passed("manifest", f"signed by the key; case {manifest['case_id']}")
    return manifest  # type: ignore[no-any-return]


def _verify_files(files: dict[str, bytes], manifest: dict[str, Any], report: Report) -> None:
    listed: dict[str, str] = manifest["files"]
    unlisted = sorted(set(files) - set(listed) - {MANIFEST, MANIFEST_SIGNATURE})
    bad = [name for name in sorted(listed) if name not in files] + unlisted
    bad += [
        name
        for name in sorted(listed)
        if name in files and hashlib.sha256(files[name]).hexdigest() != listed[name]
    ]
    if bad:
        report.failed("files", "missing, unlisted or altered: " + ", ".join(bad))
        raise _Unverifiable
    report.passed("files", f"{len(listed)} files match their SHA-256 in the manifest")


def _verified_tree_head(
    files: dict[str, bytes], manifest: dict[str, Any], public_key: Ed25519PublicKey, report: Report
) -> TreeHead:
    try:
        head = TreeHead.from_json_dict(json.loads(files[TREE_HEAD]))
        verify_tree_head(head, public_key)
        if head.tree_size != manifest["tree_size"]:
            raise EvidenceError("its size differs from the manifest's")
    except (EvidenceError, ValueError) as error:
        report.failed("tree head", str(error))
        raise _Unverifiable from error
    report.passed(
        "tree head",
        f"size {head.tree_size}, root {head.root_hash.hex()}, signed {head.timestamp.isoformat()}",
    )
    return head


def _verify_events(
    files: dict[str, bytes], manifest: dict[str, Any], head: TreeHead, report: Report
) -> list[Envelope]:
    lines = files[EVENTS].splitlines()
    proofs = json.loads(files[PROOFS])
    if len(lines) != len(proofs) or len(lines) != manifest["records"]:
        report.failed(
            "events",
            f"{len(lines)} events, {len(proofs)} proofs, the manifest says {manifest['records']}",
        )
        raise _Unverifiable
    envelopes: list[Envelope] = []
    chain_failures: list[str] = []
    proof_failures: list[str] = []
    previous = GENESIS_HASH
    for seq, (line, proof) in enumerate(zip(lines, proofs, strict=True), start=1):
        where = f"event {seq}"
        try:
            envelope = Envelope.from_bytes(line)
        except ValueError:
            chain_failures.append(f"{where}: not a CloudEvents envelope")
            continue
        envelopes.append(envelope)
        where = f"event {seq} ({envelope.id}, {envelope.type})"
        if envelope.to_bytes() != line:
            chain_failures.append(f"{where}: not in canonical form")
        if str(envelope.subject) != manifest["case_id"]:
            chain_failures.append(f"{where}: belongs to {envelope.subject}, not this case")
        if proof["case_seq"] != seq or proof["prev_hash"] != previous:
            chain_failures.append(f"{where}: does not link to the event before it")
        if chain_hash(previous, line) != proof["hash"]:
            chain_failures.append(f"{where}: its hash does not match its bytes")
        previous = proof["hash"]
        try:
            merkle.verify_inclusion(
                proof["leaf_index"],
                head.tree_size,
                merkle.leaf_hash(line),
                [bytes.fromhex(node) for node in proof["inclusion_proof"]],
                head.root_hash,
            )
        except (merkle.ProofError, ValueError) as error:
            proof_failures.append(f"{where}: {error}")
    _summarise(report, "hash chain", chain_failures, f"{len(lines)} events link from genesis")
    _summarise(
        report,
        "inclusion",
        proof_failures,
        f"{len(lines)} events are in the signed tree of {head.tree_size}",
    )
    return envelopes


def _summarise(report: Report, name: str, failures: list[str], success: str) -> None:
    if failures:
        more = f" (and {len(failures) - 1} more)" if len(failures) > 1 else ""
        report.failed(name, failures[0] + more)
    else:
        report.passed(name, success)


def _verify_state(files: dict[str, bytes], envelopes: list[Envelope], report: Report) -> None:
    claimed = json.loads(files[STATE])
    replayed = case.state_hash(case_state_of(envelopes))
    if claimed.get("state_hash") != replayed:
        report.failed("state", f"replaying the events gives {replayed}, not the bundle's")
    elif fingerprint(claimed.get("state")) != replayed:
        report.failed("state", "the state shown differs from its hash")
    else:
        report.passed("state", f"replaying the events gives state hash {replayed}")
