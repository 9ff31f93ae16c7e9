"""Personal data in events, sealed with a key per customer (crypto-shredding).

A personal field's value is stored and published sealed: AES-256-GCM under the
customer's data key, bound to the event type and field it belongs to. Destroying the key
erases the value everywhere at once (event stores, Kafka, audit, exports) while the sealed
bytes, and so every hash, proof and signature over them, stay exactly as they were.
Revealing with the key gone shows the field as erased. Pure: keys in, values out; the
keys themselves live in the keyring (`casetrail.runtime.keyring`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

SEALED_PREFIX = "pii:v1:"
ERASED = "[erased]"
UNREADABLE = "[unreadable]"
NONCE_BYTES = 12
KEY_BYTES = 32

# Which fields of which events hold personal data; `[]` walks a list of objects, and a
# dot names one entry of an object (a channel's own facts: the rest stay readable, since
# the SLA timer and triage decide by them).
PERSONAL_FIELDS: Mapping[str, tuple[str, ...]] = {
    "casetrail.case.opened.v1": (
        "subject",
        "description",
        "customer_ref",
        "source.from",
        "source.callback_number",
        "source.post_url",
        "source.zip_code",
    ),
    "casetrail.case.message_received.v1": ("subject", "body"),
    "casetrail.customer.contact_updated.v1": (
        "name",
        "contacts[].value",
        "added[].value",
        "removed[].value",
    ),
    "casetrail.case.satisfaction_recorded.v1": ("feedback",),
    # What the agent did and found: the customer's story, in the agent's words.
    "casetrail.case.worklog_entry_added.v1": ("action", "outcome"),
}


class SealError(ValueError):
    """A sealed value that does not open with this key for this field."""


@dataclass(frozen=True)
class DataKey:
    key_id: str
    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != KEY_BYTES:
            raise SealError(f"a data key is {KEY_BYTES} bytes")


def new_data_key() -> DataKey:
    # A random id, not one derived from the customer: the id travels with every value.
    return DataKey(os.urandom(8).hex(), AESGCM.generate_key(bit_length=256))


def sealed_max_length(plain_max_chars: int) -> int:
    """The longest sealed form of a text of at most `plain_max_chars` characters.

    Contracts bound their personal fields by this, so a field's plaintext limit (enforced
    where the text enters) still holds once it is sealed: UTF-8 takes up to 4 bytes a
    character, GCM adds a nonce and a tag, base64 four characters for every three bytes.
    """
    sealed_bytes = NONCE_BYTES + 4 * plain_max_chars + 16
    return len(SEALED_PREFIX) + 16 + 1 + -(-sealed_bytes * 4 // 3)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def is_sealed(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(SEALED_PREFIX)


def key_id_of(sealed: str) -> str:
    if not is_sealed(sealed):
        raise SealError("not a sealed value")
    return sealed[len(SEALED_PREFIX) :].split(":", 1)[0]


def seal(value: str, key: DataKey, context: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    aad = f"{key.key_id}|{context}".encode()
    sealed = AESGCM(key.secret).encrypt(nonce, value.encode(), aad)
    return f"{SEALED_PREFIX}{key.key_id}:{_b64(nonce + sealed)}"


def unseal(sealed: str, key: DataKey, context: str) -> str:
    if key_id_of(sealed) != key.key_id:
        raise SealError("sealed with another key")
    try:
        raw = _unb64(sealed.rsplit(":", 1)[1])
        aad = f"{key.key_id}|{context}".encode()
        return AESGCM(key.secret).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], aad).decode()
    except (InvalidTag, ValueError, IndexError) as error:
        raise SealError("the value does not open for this key and field") from error


def wrap_key(key: DataKey, master: bytes) -> bytes:
    """The data key sealed under the keyring's master key, for storage."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(master).encrypt(nonce, key.secret, key.key_id.encode())


def unwrap_key(key_id: str, wrapped: bytes, master: bytes) -> DataKey:
    try:
        nonce, sealed = wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:]
        secret = AESGCM(master).decrypt(nonce, sealed, key_id.encode())
    except InvalidTag as error:
        raise SealError("the wrapped key does not open with this master key") from error
    return DataKey(key_id, secret)


def _each_field(
    event_type: str, data: dict[str, Any], change: Callable[[Any, str], Any]
) -> dict[str, Any]:
    """A copy of `data` with `change(value, context)` applied to each personal field."""
    result = dict(data)
    for path in PERSONAL_FIELDS.get(event_type, ()):
        context = f"{event_type}/{path}"
        if "." in path and "[]." not in path:
            field, entry = path.split(".", 1)
            facts = result.get(field)
            if isinstance(facts, dict) and isinstance(facts.get(entry), str):
                result[field] = {**facts, entry: change(facts[entry], context)}
        elif "[]." in path:
            field, inner = path.split("[].", 1)
            items = result.get(field)
            if isinstance(items, list):
                result[field] = [
                    {**item, inner: change(item[inner], context)}
                    if isinstance(item, dict) and isinstance(item.get(inner), str)
                    else item
                    for item in items
                ]
        elif isinstance(result.get(path), str):
            result[path] = change(result[path], context)
    return result


def key_ids_in(event_type: str, data: dict[str, Any]) -> set[str]:
    """The data keys the event's sealed fields need."""
    found: set[str] = set()

    def note(value: Any, _context: str) -> Any:
        if is_sealed(value):
            found.add(key_id_of(value))
        return value

    _each_field(event_type, data, note)
    return found


def seal_personal(event_type: str, data: dict[str, Any], key: DataKey) -> dict[str, Any]:
    """Every personal field sealed, whatever it holds: text that merely looks sealed (a
    customer may write anything) is sealed like the rest."""
    return _each_field(event_type, data, lambda v, c: seal(v, key, c))


def reveal_personal(
    event_type: str, data: dict[str, Any], keys: Mapping[str, DataKey]
) -> dict[str, Any]:
    """Personal fields opened with the keys at hand; a destroyed key's fields read as erased."""

    def reveal(value: Any, context: str) -> Any:
        if not is_sealed(value):
            return value
        key = keys.get(key_id_of(value))
        if key is None:
            return ERASED
        try:
            return unseal(value, key, context)
        except SealError:
            # Recorded before sealing began, or altered: one field fails, not the case.
            return UNREADABLE

    return _each_field(event_type, data, reveal)
