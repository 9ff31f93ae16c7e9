"""Signed tree heads: the log's size and root at an instant, signed with Ed25519.

Whoever holds the public key can check a head, and with the log's proofs, that an event
is in the log and that a later head only extends an earlier one.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from casetrail.contracts.envelope import canonical_json

# Names what is signed, so a signature over a tree head cannot pass for any other message.
TREE_HEAD_CONTEXT = "casetrail-audit-log/tree-head/v1"


class EvidenceError(ValueError):
    """Evidence that does not hold: a bad signature, key, proof or hash."""


@dataclass(frozen=True)
class TreeHead:
    tree_size: int
    root_hash: bytes
    timestamp: datetime
    key_id: str
    signature: bytes

    def signed_bytes(self) -> bytes:
        return tree_head_message(self.tree_size, self.root_hash, self.timestamp)

    def to_json_dict(self) -> dict[str, Any]:
        return {
            "tree_size": self.tree_size,
            "root_hash": self.root_hash.hex(),
            "timestamp": self.timestamp.isoformat(),
            "key_id": self.key_id,
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json_dict(cls, value: dict[str, Any]) -> TreeHead:
        try:
            timestamp = datetime.fromisoformat(value["timestamp"])
            if timestamp.tzinfo is None:
                raise ValueError("the timestamp has no time zone")
            return cls(
                tree_size=int(value["tree_size"]),
                root_hash=bytes.fromhex(value["root_hash"]),
                timestamp=timestamp,
                key_id=str(value["key_id"]),
                signature=base64.b64decode(value["signature"], validate=True),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise EvidenceError(f"not a tree head: {error}") from error


def tree_head_message(tree_size: int, root_hash: bytes, timestamp: datetime) -> bytes:
    return canonical_json(
        {
            "context": TREE_HEAD_CONTEXT,
            "tree_size": tree_size,
            "root_hash": root_hash.hex(),
            "timestamp": timestamp.astimezone(UTC).isoformat(),
        }
    )


def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def sign_tree_head(
    private_key: Ed25519PrivateKey, tree_size: int, root_hash: bytes, timestamp: datetime
) -> TreeHead:
    timestamp = timestamp.astimezone(UTC)
    return TreeHead(
        tree_size=tree_size,
        root_hash=root_hash,
        timestamp=timestamp,
        key_id=key_id(private_key.public_key()),
        signature=private_key.sign(tree_head_message(tree_size, root_hash, timestamp)),
    )


def verify_signature(public_key: Ed25519PublicKey, signature: bytes, message: bytes) -> None:
    try:
        public_key.verify(signature, message)
    except InvalidSignature as error:
        raise EvidenceError("the signature does not match the public key") from error


def verify_tree_head(head: TreeHead, public_key: Ed25519PublicKey) -> None:
    if head.key_id != key_id(public_key):
        raise EvidenceError(f"the tree head was signed by key {head.key_id}, not this one")
    verify_signature(public_key, head.signature, head.signed_bytes())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise EvidenceError("the signing key is not an Ed25519 private key")
    return key


def load_public_key(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except ValueError as error:
        raise EvidenceError(f"not a PEM public key: {error}") from error
    if not isinstance(key, Ed25519PublicKey):
        raise EvidenceError("the public key is not an Ed25519 key")
    return key


def public_key_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def new_private_key_pem() -> bytes:
    return Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
