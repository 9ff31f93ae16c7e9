"""The keyring: each customer's data key, kept wrapped in a database of its own.

Personal fields of events are sealed under their customer's data key
(`casetrail.contracts.personal`); this is where those keys live, wrapped under a master
key that never touches the database, the way a KMS would keep them. Erasing a customer
destroys the wrapped key: every sealed value, wherever it was copied (event stores,
Kafka, audit, exports), then reads as erased. A destroyed key stays destroyed: the
database itself refuses to bring one back or to forget that it existed.

Data about a known customer is sealed under the customer's key; data of a case whose
customer is unknown under a key of the case's own. Erasing a customer destroys their key
and the keys of all their cases.
"""

from __future__ import annotations

import base64
import os
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from casetrail.contracts import personal
from casetrail.contracts.envelope import Envelope
from casetrail.contracts.personal import KEY_BYTES, DataKey, new_data_key, unwrap_key, wrap_key

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS keyring_keys (
    key_id text PRIMARY KEY,
    owner text NOT NULL UNIQUE,
    wrapped bytea,
    created_at timestamptz NOT NULL DEFAULT now(),
    destroyed_at timestamptz,
    destroyed_by text,
    destroy_reason text
);
CREATE OR REPLACE FUNCTION keyring_keys_only_destroyed() RETURNS trigger AS $$
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'keyring: keys are destroyed, never deleted (%)', TG_OP;
    END IF;
    IF OLD.wrapped IS NULL THEN
        RAISE EXCEPTION 'keyring: key % was destroyed and stays destroyed', OLD.key_id;
    END IF;
    IF NEW.wrapped IS NOT NULL OR NEW.destroyed_at IS NULL
       OR NEW.key_id <> OLD.key_id OR NEW.owner <> OLD.owner
       OR NEW.created_at <> OLD.created_at THEN
        RAISE EXCEPTION 'keyring: a key can only be destroyed';
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
DROP TRIGGER IF EXISTS keyring_keys_only_destroyed ON keyring_keys;
CREATE TRIGGER keyring_keys_only_destroyed BEFORE UPDATE OR DELETE ON keyring_keys
    FOR EACH ROW EXECUTE FUNCTION keyring_keys_only_destroyed();
DROP TRIGGER IF EXISTS keyring_keys_never_truncated ON keyring_keys;
CREATE TRIGGER keyring_keys_never_truncated BEFORE TRUNCATE ON keyring_keys
    FOR EACH STATEMENT EXECUTE FUNCTION keyring_keys_only_destroyed();
"""

# What each kind of keyring user may do: mint keys, only read them, or also destroy them.
GRANTS = {
    "reader": "GRANT SELECT ON keyring_keys TO {role}",
    "minter": "GRANT SELECT, INSERT ON keyring_keys TO {role}",
    "eraser": "GRANT SELECT, INSERT, UPDATE (wrapped, destroyed_at, destroyed_by, "
    "destroy_reason) ON keyring_keys TO {role}",
}


class KeyringError(RuntimeError):
    """The keyring refused or could not be reached."""


class KeyDestroyed(KeyringError):
    """New personal data for an owner whose key was destroyed: it cannot be sealed."""

    def __init__(self, owner: str) -> None:
        super().__init__(f"the data key of {owner} was destroyed: its personal data is erased")
        self.owner = owner


def customer_owner(customer_id: UUID) -> str:
    return f"customer:{customer_id}"


def case_owner(case_id: UUID) -> str:
    return f"case:{case_id}"


def new_master_key() -> str:
    """A fresh master key, as the master key file holds it."""
    return base64.b64encode(os.urandom(KEY_BYTES)).decode()


def load_master_key(path: Path) -> bytes:
    """The master key file holds 32 random bytes, base64-encoded."""
    try:
        raw = base64.b64decode(path.read_text().strip(), validate=True)
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read the keyring master key {path}: {error}") from error
    if len(raw) != KEY_BYTES:
        raise ValueError(f"the keyring master key {path} must hold {KEY_BYTES} bytes")
    return raw


@dataclass(frozen=True)
class Erasure:
    key_ids: tuple[str, ...]
    destroyed_at: datetime | None
    destroyed_by: str | None
    reason: str | None


class Keyring:
    """Data keys by owner, minted on first use; synchronous, for the event store's threads.

    Loading an aggregate opens its events one by one, so a key just read is kept for
    `cache_seconds`: a key destroyed elsewhere stops opening anything within that time,
    and at once in the process that destroyed it.
    """

    def __init__(
        self,
        database_url: str,
        master_key: bytes,
        pool_size: int = 4,
        cache_seconds: float = 1.0,
    ) -> None:
        self.database_url = database_url
        self.master_key = master_key
        self.pool_size = pool_size
        self.cache_seconds = cache_seconds
        self._pool: ConnectionPool[Any] | None = None
        self._lock = threading.Lock()
        self._cached: dict[str, tuple[DataKey, float]] = {}  # by key id
        self._sealing: dict[str, tuple[DataKey, float]] = {}  # by owner

    @classmethod
    def install(cls, owner_url: str, roles: dict[str, str]) -> None:
        """Creates the keyring's tables as their owner and grants each role its kind."""
        with psycopg.connect(owner_url, autocommit=True) as conn:
            conn.execute(SCHEMA_SQL)
            for role, kind in roles.items():
                conn.execute(GRANTS[kind].format(role=f'"{role}"'))

    def _connection(self) -> Any:
        with self._lock:
            if self._pool is None:
                self._pool = ConnectionPool(
                    self.database_url,
                    min_size=1,
                    max_size=self.pool_size,
                    kwargs={"row_factory": dict_row, "connect_timeout": 5},
                    # After a PostgreSQL restart, hand out no connection that died with it.
                    check=ConnectionPool.check_connection,
                    open=True,
                )
        return self._pool.connection(timeout=10)

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None

    def _live(self, row: dict[str, Any] | None) -> DataKey | None:
        if row is None or row["wrapped"] is None:
            return None
        return unwrap_key(row["key_id"], bytes(row["wrapped"]), self.master_key)

    def _owned(self, cursor: Any, owner: str) -> dict[str, Any] | None:
        cursor.execute("SELECT key_id, wrapped FROM keyring_keys WHERE owner = %s", (owner,))
        row: dict[str, Any] | None = cursor.fetchone()
        return row

    def _mint(self, cursor: Any, owner: str) -> dict[str, Any]:
        """The owner's key row, minted now if it has none; a racing minter's key wins."""
        row = self._owned(cursor, owner)
        if row is not None:
            return row
        key = new_data_key()
        cursor.execute(
            "INSERT INTO keyring_keys (key_id, owner, wrapped) VALUES (%s, %s, %s) "
            "ON CONFLICT (owner) DO NOTHING RETURNING key_id, wrapped",
            (key.key_id, owner, wrap_key(key, self.master_key)),
        )
        row = cursor.fetchone() or self._owned(cursor, owner)
        assert row is not None
        return row

    def sealing_key(self, case_id: UUID | None, customer_id: UUID | None) -> DataKey:
        """The key to seal personal data under: the customer's when the customer is known,
        else the case's own. Minted on first use; a destroyed one is never replaced."""
        if customer_id is not None:
            owner = customer_owner(customer_id)
        else:
            assert case_id is not None, "personal data belongs to a case or a customer"
            owner = case_owner(case_id)
        now = time.monotonic()
        cached = self._sealing.get(owner)
        if cached is not None and now - cached[1] < self.cache_seconds:
            return cached[0]
        with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
            row = self._mint(cursor, owner)
        key = self._live(row)
        if key is None:
            raise KeyDestroyed(owner)
        self._sealing[owner] = self._cached[key.key_id] = (key, now)
        return key

    def keys(self, key_ids: Iterable[str]) -> dict[str, DataKey]:
        """The live keys among `key_ids`; a destroyed or unknown one is simply absent."""
        now = time.monotonic()
        found = {}
        for key_id in set(key_ids):
            cached = self._cached.get(key_id)
            if cached is not None and now - cached[1] < self.cache_seconds:
                found[key_id] = cached[0]
        wanted = sorted(set(key_ids) - set(found))
        if not wanted:
            return found
        with self._connection() as conn, conn.cursor() as cursor:
            cursor.execute(
                "SELECT key_id, wrapped FROM keyring_keys WHERE key_id = ANY(%s)", (wanted,)
            )
            rows = cursor.fetchall()
        for key in map(self._live, rows):
            if key is not None:
                found[key.key_id] = key
                self._cached[key.key_id] = (key, now)
        return found

    def reveal(self, envelopes: Sequence[Envelope]) -> list[Envelope]:
        """The envelopes with their personal fields opened, or `[erased]` where the key is
        gone; one look-up for all their keys. The recorded envelopes stay as they were."""
        needed = [personal.key_ids_in(e.type, e.data) for e in envelopes]
        keys = self.keys(set().union(*needed))
        return [
            e.model_copy(update={"data": personal.reveal_personal(e.type, e.data, keys)})
            if ids
            else e
            for e, ids in zip(envelopes, needed, strict=True)
        ]

    def destroy(self, owners: Sequence[str], *, by: str, reason: str) -> Erasure:
        """Destroys the owners' keys at once; repeating it changes nothing. The erasure
        names every key destroyed, and who first destroyed them and why."""
        self._cached.clear()
        self._sealing.clear()
        with self._connection() as conn, conn.transaction(), conn.cursor() as cursor:
            cursor.execute(
                "UPDATE keyring_keys SET wrapped = NULL, destroyed_at = now(), "
                "destroyed_by = %s, destroy_reason = %s "
                "WHERE owner = ANY(%s) AND wrapped IS NOT NULL",
                (by, reason, list(owners)),
            )
            cursor.execute(
                "SELECT key_id, destroyed_at, destroyed_by, destroy_reason FROM keyring_keys "
                "WHERE owner = ANY(%s) ORDER BY destroyed_at, key_id",
                (list(owners),),
            )
            rows = cursor.fetchall()
        first = rows[0] if rows else {}
        return Erasure(
            tuple(row["key_id"] for row in rows),
            first.get("destroyed_at"),
            first.get("destroyed_by"),
            first.get("destroy_reason"),
        )
