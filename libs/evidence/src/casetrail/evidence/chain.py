"""The per-case hash chain: each record's hash is SHA-256 over the previous record's hash
and the event's canonical bytes, so changing, removing or reordering any record breaks
every hash after it."""

from __future__ import annotations

import hashlib

GENESIS_HASH = "0" * 64


def chain_hash(previous_hash: str, canonical: bytes) -> str:
    return hashlib.sha256(bytes.fromhex(previous_hash) + canonical).hexdigest()
